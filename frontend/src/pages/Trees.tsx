import { useMemo, useState } from 'react';
import { stringify } from 'yaml';
import { api, ApiError, Device, Execution, Page, Tree } from '../api';
import { Empty, ErrorBox, Link, navigate, Show, useAsync } from '../ui';

type Screen = { id: string; name?: string };
type Edge = { id: string; from: string; to: string; actions?: unknown[] };

/** An edge action for people: `{key: "left"}` → `left`. */
export function actionText(a: unknown): string {
  if (typeof a === 'string') return a;
  if (a && typeof a === 'object') {
    const [k, v] = Object.entries(a as Record<string, unknown>)[0] ?? [];
    return k === 'key' ? String(v) : `${k} ${JSON.stringify(v)}`;
  }
  return String(a);
}

/** Places screens on a circle (trees are small: a handful to a few dozen screens). */
export function layout(screens: Screen[], w: number, h: number) {
  const r = Math.min(w, h) / 2 - 70;
  return new Map(
    screens.map((s, i) => {
      const a = (2 * Math.PI * i) / Math.max(1, screens.length) - Math.PI / 2;
      return [s.id, { x: w / 2 + r * Math.cos(a), y: h / 2 + r * Math.sin(a) }];
    }),
  );
}

export function Trees({ model }: { model?: string }) {
  const list = useAsync(() => api<Tree[]>('/api/v1/navigation-trees'), []);
  return (
    <section>
      <h1>Navigation trees</h1>
      <div className="split">
        <nav className="side">
          <Show state={list} what="trees">
            {(p) =>
              p.length === 0 ? (
                <Empty>No navigation tree yet (`labwright trees push`).</Empty>
              ) : (
                <ul className="plain">
                  {p.map((t) => (
                    <li key={t.model} className={t.model === model ? 'active' : ''}>
                      <Link to={`/trees/${encodeURIComponent(t.model)}`}>{t.model}</Link>{' '}
                      <span className="muted small">v{t.version}</span>
                    </li>
                  ))}
                </ul>
              )
            }
          </Show>
        </nav>
        <div className="grow">{model ? <Graph model={model} /> : <Empty>Choose a device model.</Empty>}</div>
      </div>
    </section>
  );
}

function Graph({ model }: { model: string }) {
  const tree = useAsync(() => api<Tree>(`/api/v1/navigation-trees/${encodeURIComponent(model)}`), [model]);
  const devices = useAsync(
    () => api<Page<Device>>(`/api/v1/devices?status=online&model=${encodeURIComponent(model)}&limit=500`),
    [model],
  );
  const [device, setDevice] = useState('');
  const [error, setError] = useState<unknown>();
  const W = 720;
  const H = 520;
  const doc = tree.data?.document;
  const screens: Screen[] = doc?.screens ?? [];
  const edges: Edge[] = doc?.edges ?? [];
  const pos = useMemo(() => layout(screens, W, H), [screens]);

  // Going to a screen is a one-step test case (stored once per screen, then run), so it
  // leaves the same trail as any run: steps, screenshots, the path taken.
  async function goTo(screen: Screen) {
    if (!device) return;
    setError(undefined);
    try {
      const name = `Go to ${screen.id} (${model})`;
      // Stored the first time only (each store would be a new version).
      const stored = await api(`/api/v1/testcases/${encodeURIComponent(name)}`).then(
        () => true,
        (e) => {
          if (e instanceof ApiError && e.status === 404) return false;
          throw e;
        },
      );
      if (!stored) {
        const yaml = stringify({
          name,
          description: `Navigate to ${screen.id}, started from the navigation tree page.`,
          device_model: model,
          steps: [{ goto: screen.id }],
        });
        await api('/api/v1/testcases', { method: 'POST', raw: yaml, contentType: 'application/yaml' });
      }
      const e = await api<Execution>('/api/v1/executions', { method: 'POST', body: { testcase: name, device } });
      navigate(`/executions/${e.id}`);
    } catch (e) {
      setError(e);
    }
  }

  return (
    <Show state={tree} what="the tree">
      {(t) => (
        <div>
          <p className="muted">
            {t.document?.description} · version {t.version} · {screens.length} screens, {edges.length} edges
          </p>
          <Show state={devices} what="devices">
            {(p) => (
              <div className="row">
                <select value={device} onChange={(e) => setDevice(e.target.value)} aria-label="Device to drive">
                  <option value="">Pick a live device to drive…</option>
                  {p.items.map((d) => (
                    <option key={d.id} value={d.id}>
                      {d.name || d.device_key} ({d.host_name})
                    </option>
                  ))}
                </select>
                <span className="muted small">{device ? 'Click a screen to go there.' : ''}</span>
              </div>
            )}
          </Show>
          {error !== undefined && <ErrorBox error={error} />}
          <svg className="graph" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Navigation tree of ${model}`}>
            <defs>
              <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                <path d="M 0 0 L 10 5 L 0 10 z" className="arrowhead" />
              </marker>
            </defs>
            {edges.map((e) => {
              const a = pos.get(e.from);
              const b = pos.get(e.to);
              if (!a || !b) return null;
              const dx = b.x - a.x;
              const dy = b.y - a.y;
              const len = Math.hypot(dx, dy) || 1;
              const k = 46 / len;
              return (
                <g key={e.id}>
                  <line x1={a.x + dx * k} y1={a.y + dy * k} x2={b.x - dx * k} y2={b.y - dy * k} className="edge" markerEnd="url(#arrow)">
                    <title>
                      {e.id}: {(e.actions ?? []).map(actionText).join(', ')}
                    </title>
                  </line>
                </g>
              );
            })}
            {screens.map((s) => {
              const p = pos.get(s.id)!;
              return (
                <g
                  key={s.id}
                  className={`screen ${device ? 'clickable' : ''}`}
                  onClick={() => goTo(s)}
                  data-testid={`screen-${s.id}`}
                >
                  <circle cx={p.x} cy={p.y} r={44} />
                  <text x={p.x} y={p.y} textAnchor="middle" dominantBaseline="middle">
                    {s.id}
                  </text>
                  <title>{s.name ?? s.id}</title>
                </g>
              );
            })}
          </svg>
        </div>
      )}
    </Show>
  );
}
