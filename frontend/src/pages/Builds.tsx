import { FormEvent, useEffect, useRef, useState } from 'react';
import { api, Build, Page, sse } from '../api';
import { ago, Badge, Empty, ErrorBox, Link, navigate, Show, useAsync, useEvents } from '../ui';
import { SessionTerminal } from './Terminal';

const STAGES = ['queued', 'cloning', 'detecting', 'building', 'starting', 'running'];
const ENDED = ['failed', 'expired', 'cancelled', 'stopped'];

export function Builds() {
  const list = useAsync(() => api<Page<Build>>('/api/v1/builds?limit=100'), []);
  useEvents((e) => {
    if (e.kind === 'resync' || e.kind.startsWith('builds.')) list.reload();
  });
  const [url, setUrl] = useState('');
  const [ref, setRef] = useState('');
  const [error, setError] = useState<unknown>();
  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(undefined);
    try {
      const b = await api<Build>('/api/v1/builds', {
        method: 'POST',
        body: { repo_url: url.trim(), ...(ref.trim() ? { ref: ref.trim() } : {}) },
      });
      navigate(`/builds/${b.id}`);
    } catch (err) {
      setError(err);
    }
  }
  return (
    <section>
      <h1>Builds and sessions</h1>
      <form className="card row" onSubmit={submit}>
        <input className="grow" placeholder="git URL: https://…, git://…, ssh://…" value={url} onChange={(e) => setUrl(e.target.value)} aria-label="Repository URL" />
        <input placeholder="branch, tag or commit" value={ref} onChange={(e) => setRef(e.target.value)} aria-label="Ref" />
        <button type="submit" disabled={!url.trim()}>
          Build and run
        </button>
      </form>
      {error !== undefined && <ErrorBox error={error} />}
      <Show state={list} what="builds">
        {(p) =>
          p.items.length === 0 ? (
            <Empty>No builds yet: submit a repository above.</Empty>
          ) : (
            <table className="list">
              <thead>
                <tr>
                  <th className="wide">Repository</th>
                  <th>Stage</th>
                  <th>Stack</th>
                  <th>Created</th>
                </tr>
              </thead>
              <tbody>
                {p.items.map((b) => (
                  <tr key={b.id} data-testid="build-row">
                    <td className="wide">
                      <Link to={`/builds/${b.id}`}>{b.repo_url}</Link> {b.ref && <span className="muted small">@{b.ref}</span>}
                    </td>
                    <td>
                      <Badge value={b.stage} />
                    </td>
                    <td>{b.stack ?? '—'}</td>
                    <td className="small">{ago(b.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </section>
  );
}

export function BuildPage({ id }: { id: string }) {
  const build = useAsync(() => api<Build>(`/api/v1/builds/${id}`), [id]);
  useEvents((e) => {
    if (e.kind === 'resync' || e.event?.build_id === id) build.reload();
  });
  const [error, setError] = useState<unknown>();
  const [terminal, setTerminal] = useState(false);
  async function act(path: string, method: string, body?: unknown) {
    setError(undefined);
    try {
      await api(path, { method, body });
      build.reload();
    } catch (e) {
      setError(e);
    }
  }
  return (
    <Show state={build} what="the build">
      {(b) => {
        const at = STAGES.indexOf(b.stage);
        const s = b.session;
        return (
          <section>
            <h1>
              Build <Badge value={b.stage} />
            </h1>
            <p className="muted">
              {b.repo_url} {b.ref && `@ ${b.ref}`} · {b.stack ?? 'stack not detected yet'} · created {ago(b.created_at)}
            </p>
            <ol className="stages" aria-label="Stages">
              {STAGES.map((st, i) => (
                <li key={st} className={i < at || b.stage === 'running' ? 'done' : i === at ? 'current' : ''}>
                  {st}
                </li>
              ))}
              {ENDED.includes(b.stage) && <li className="ended">{b.stage}</li>}
            </ol>
            {b.reason && <p className={b.stage === 'failed' ? 'state error' : ''}>{b.reason}</p>}
            {!ENDED.includes(b.stage) && b.stage !== 'running' && (
              <button onClick={() => act(`/api/v1/builds/${id}/cancel`, 'POST')}>Cancel the build</button>
            )}
            {error !== undefined && <ErrorBox error={error} />}
            {s && (
              <div className="card">
                <h2>
                  Session <Badge value={s.status} />
                </h2>
                <p className="muted small">
                  container {s.container_id.slice(0, 12)} · expires {new Date(s.expires_at).toLocaleTimeString()}
                </p>
                {s.status === 'running' && (
                  <div className="row">
                    <button onClick={() => setTerminal(true)} disabled={terminal}>
                      Open a terminal
                    </button>
                    <button onClick={() => act(`/api/v1/sessions/${s.id}/extend`, 'POST', { seconds: 1800 })}>Extend 30 min</button>
                    <button className="danger" onClick={() => act(`/api/v1/sessions/${s.id}`, 'DELETE')}>
                      End the session
                    </button>
                  </div>
                )}
                {terminal && <SessionTerminal sessionId={s.id} />}
              </div>
            )}
            {b.dockerfile && (
              <details>
                <summary>Dockerfile</summary>
                <pre>{b.dockerfile}</pre>
              </details>
            )}
            <h2>Log</h2>
            <BuildLog id={id} />
          </section>
        );
      }}
    </Show>
  );
}

function BuildLog({ id }: { id: string }) {
  const [lines, setLines] = useState<string[]>([]);
  const [error, setError] = useState<unknown>();
  const [ended, setEnded] = useState(false);
  const box = useRef<HTMLPreElement>(null);
  useEffect(() => {
    const abort = new AbortController();
    setLines([]);
    setEnded(false);
    sse(
      `/api/v1/builds/${id}/logs`,
      (event, data) => {
        if (event === 'end') setEnded(true);
        else if (event === 'message' || event === 'log') setLines((l) => [...l, data]);
      },
      abort.signal,
    ).catch((e) => {
      if (!abort.signal.aborted) setError(e);
    });
    return () => abort.abort();
  }, [id]);
  useEffect(() => {
    box.current?.scrollTo(0, box.current.scrollHeight);
  }, [lines]);
  if (error) return <ErrorBox error={error} />;
  return (
    <pre className="log" ref={box} data-testid="build-log">
      {lines.length === 0 ? (ended ? 'No log.' : 'Waiting for the log…') : lines.join('\n')}
    </pre>
  );
}
