import { useEffect, useState } from 'react';
import { api, blobUrl, Execution, Page, Step, TestCase } from '../api';
import { ago, Badge, Empty, Link, Show, useAsync, useEvents } from '../ui';
import { ConsoleLog } from './ConsoleLog';

const STATUSES = ['queued', 'dispatched', 'running', 'passed', 'failed', 'error', 'cancelled', 'interrupted'];
const FINAL = ['passed', 'failed', 'error', 'cancelled', 'interrupted'];

export function Executions() {
  const [status, setStatus] = useState('');
  const list = useAsync(
    () => api<Page<Execution>>(`/api/v1/executions?limit=100${status ? `&status=${status}` : ''}`),
    [status],
  );
  const [q, setQ] = useState('');
  useEvents((e) => {
    if (e.kind === 'resync' || e.kind.startsWith('executions.')) list.reload();
  });
  return (
    <section>
      <h1>Executions</h1>
      <div className="filters">
        <input placeholder="Test case" value={q} onChange={(e) => setQ(e.target.value)} aria-label="Filter by test case" />
        <select value={status} onChange={(e) => setStatus(e.target.value)} aria-label="Status">
          <option value="">Any status</option>
          {STATUSES.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
      </div>
      <Show state={list} what="executions">
        {(p) => {
          const items = p.items.filter((e) => e.testcase.toLowerCase().includes(q.trim().toLowerCase()));
          if (items.length === 0)
            return <Empty>{p.items.length === 0 ? 'Nothing has run yet: run a test case from a device page.' : 'No execution matches.'}</Empty>;
          return (
            <table className="list">
              <thead>
                <tr>
                  <th>Test case</th>
                  <th>Status</th>
                  <th className="wide">Reason</th>
                  <th>Created</th>
                </tr>
              </thead>
              <tbody>
                {items.map((e) => (
                  <tr key={e.id} data-testid="execution-row">
                    <td>
                      <Link to={`/executions/${e.id}`}>{e.testcase}</Link> <span className="muted small">v{e.testcase_version}</span>
                    </td>
                    <td>
                      <Badge value={e.status} />
                      {e.queue_position != null && <span className="muted small"> #{e.queue_position} in queue</span>}
                    </td>
                    <td className="wide small">{e.reason}</td>
                    <td className="small">{ago(e.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          );
        }}
      </Show>
    </section>
  );
}

/** The reference image a step compared against, if it is an image check. */
export function referenceOf(testcase: any, path: string): string | undefined {
  const m = /^steps\[(\d+)\]/.exec(path);
  const step = m ? testcase?.steps?.[Number(m[1])] : undefined;
  return step?.verify_image?.reference ?? step?.wait_image?.reference;
}

export function ExecutionPage({ id }: { id: string }) {
  const exec = useAsync(() => api<Execution>(`/api/v1/executions/${id}`), [id]);
  const running = exec.data && !FINAL.includes(exec.data.status);
  const testcase = useAsync(
    () =>
      exec.data
        ? api<TestCase>(`/api/v1/testcases/${encodeURIComponent(exec.data.testcase)}/versions/${exec.data.testcase_version}`)
        : Promise.resolve(undefined),
    [exec.data?.testcase, exec.data?.testcase_version],
  );
  useEvents((e) => {
    if (e.kind === 'resync' || e.event?.execution_id === id) exec.reload();
  });
  // Steps are not events: while the run goes, look again every second.
  useEffect(() => {
    if (!running) return;
    const t = window.setInterval(exec.reload, 1000);
    return () => window.clearInterval(t);
  }, [running, exec.reload]);
  const [open, setOpen] = useState<Step>();

  return (
    <Show state={exec} what="the execution">
      {(e) => (
        <section>
          <h1>
            {e.testcase} <Badge value={e.status} />
          </h1>
          <p className="muted">
            version {e.testcase_version} · <Link to={`/devices/${e.device_id}`}>device</Link> · created {ago(e.created_at)}
            {e.finished_at && ` · finished ${ago(e.finished_at)}`}
          </p>
          {e.reason && <p>{e.reason}</p>}
          {running && e.steps_total != null && (
            <progress max={e.steps_total} value={e.steps?.length ?? 0} aria-label="Progress" />
          )}
          {(e.steps?.length ?? 0) === 0 ? (
            <Empty>{running ? 'Waiting for the first step…' : 'No steps were recorded.'}</Empty>
          ) : (
            <ol className="timeline">
              {e.steps!.map((s) => (
                <li key={s.index} className={`step step-${s.verdict}`} data-testid="step">
                  <div className="row">
                    <Badge value={s.verdict} />
                    <code>{s.path}</code> <span className="muted">{s.kind}</span>
                    <span className="muted small">{s.duration_ms.toFixed(0)} ms</span>
                  </div>
                  {s.reason && <div className="small">{s.reason}</div>}
                  {s.screenshot_url && (
                    <Thumb url={s.screenshot_url} alt={`Step ${s.index}`} onOpen={() => setOpen(s)} />
                  )}
                </li>
              ))}
            </ol>
          )}
          {!running && <ConsoleLog executionId={e.id} />}
          {open && (
            <Enlarged
              step={open}
              reference={open.verdict !== 'pass' ? referenceOf(testcase.data?.document, open.path) : undefined}
              onClose={() => setOpen(undefined)}
            />
          )}
        </section>
      )}
    </Show>
  );
}

function useBlob(url: string | undefined) {
  const [src, setSrc] = useState<string>();
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    if (!url) return;
    let live = true;
    let made: string | undefined;
    blobUrl(url).then(
      (u) => {
        made = u;
        if (live) setSrc(u);
        else URL.revokeObjectURL(u); // fetched after the component moved on
      },
      () => live && setFailed(true),
    );
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [url]);
  return { src, failed };
}

function Thumb({ url, alt, onOpen }: { url: string; alt: string; onOpen: () => void }) {
  const { src, failed } = useBlob(url);
  if (failed) return <span className="muted small">screenshot unavailable</span>;
  return (
    <button className="thumb" onClick={onOpen} aria-label={`Enlarge the screenshot of ${alt}`}>
      {src ? <img src={src} alt={alt} /> : <span className="muted small">loading…</span>}
    </button>
  );
}

function Enlarged({ step, reference, onClose }: { step: Step; reference?: string; onClose: () => void }) {
  const shot = useBlob(step.screenshot_url ?? undefined);
  const ref = useBlob(reference ? `/api/v1/references/${encodeURIComponent(reference)}` : undefined);
  useEffect(() => {
    const k = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    window.addEventListener('keydown', k);
    return () => window.removeEventListener('keydown', k);
  }, [onClose]);
  return (
    <div className="modal" role="dialog" aria-label="Screenshot" onClick={onClose}>
      <div className="modal-body" onClick={(e) => e.stopPropagation()}>
        <div className="row">
          <strong>
            Step {step.index}: {step.path}
          </strong>
          <Badge value={step.verdict} />
          <button className="link" onClick={onClose}>
            Close
          </button>
        </div>
        {step.reason && <p>{step.reason}</p>}
        <div className={reference ? 'compare' : ''}>
          <figure>
            {shot.src && <img src={shot.src} alt="What the device showed" data-testid="enlarged" />}
            <figcaption>What the device showed</figcaption>
          </figure>
          {reference && (
            <figure>
              {ref.src ? <img src={ref.src} alt={`Reference ${reference}`} /> : <span className="muted">…</span>}
              <figcaption>Reference “{reference}”</figcaption>
            </figure>
          )}
        </div>
      </div>
    </div>
  );
}
