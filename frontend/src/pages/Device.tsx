import { useEffect, useState } from 'react';
import { api, ApiError, blobUrl, Device, Execution, Page, TestCase } from '../api';
import { ago, Badge, Empty, ErrorBox, Link, Show, useAsync, useEvents } from '../ui';
import { LiveView } from './LiveView';

const PAD: [string, string][] = [
  ['power', '⏻'],
  ['home', 'Home'],
  ['menu', 'Menu'],
  ['up', '▲'],
  ['left', '◀'],
  ['ok', 'OK'],
  ['right', '▶'],
  ['down', '▼'],
  ['back', 'Back'],
  ['info', 'Info'],
  ['ch_up', 'CH+'],
  ['ch_down', 'CH−'],
  ['vol_up', 'VOL+'],
  ['vol_down', 'VOL−'],
  ['mute', 'Mute'],
  ['play_pause', '⏯'],
];

/** Keyboard shortcuts of the remote pad. */
export const SHORTCUTS: Record<string, string> = {
  ArrowUp: 'up',
  ArrowDown: 'down',
  ArrowLeft: 'left',
  ArrowRight: 'right',
  Enter: 'ok',
  Backspace: 'back',
  Escape: 'back',
  h: 'home',
  m: 'menu',
  i: 'info',
  p: 'power',
  PageUp: 'ch_up',
  PageDown: 'ch_down',
  '+': 'vol_up',
  '-': 'vol_down',
  ' ': 'play_pause',
  ...Object.fromEntries([...'0123456789'].map((d) => [d, d])),
};

export function DevicePage({ id }: { id: string }) {
  const device = useAsync(() => api<Device>(`/api/v1/devices/${id}`), [id]);
  const runs = useAsync(() => api<Page<Execution>>(`/api/v1/executions?device_id=${id}&limit=10`), [id]);
  const [error, setError] = useState<unknown>();
  const [shot, setShot] = useState<string>();

  useEvents((e) => {
    if (e.kind === 'resync' || (e.event?.device_id === id)) {
      device.reload();
      runs.reload();
    }
  });

  async function press(key: string) {
    setError(undefined);
    try {
      await api(`/api/v1/devices/${id}/press`, { method: 'POST', body: { key } });
    } catch (e) {
      setError(e);
    }
  }

  useEffect(() => {
    function onKey(e: KeyboardEvent) {
      const t = e.target as HTMLElement;
      if (t && ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName)) return;
      const key = SHORTCUTS[e.key];
      if (key && !e.ctrlKey && !e.metaKey && !e.altKey) {
        e.preventDefault();
        press(key);
      }
    }
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id]);

  async function screenshot() {
    setError(undefined);
    try {
      setShot(await blobUrl(`/api/v1/devices/${id}/screenshot`));
    } catch (e) {
      setError(e);
    }
  }

  return (
    <Show state={device} what="the device">
      {(d) => (
        <section>
          <h1>
            {d.name || d.device_key} <Badge value={d.status} />
          </h1>
          <p className="muted">
            {d.model} on {d.host_name} · {d.driver} · {d.capabilities.join(', ')}
            {d.tags.length > 0 && ` · tags: ${d.tags.join(', ')}`}
          </p>
          <div className="device-layout">
            <div>
              {d.capabilities.includes('video_capture') && d.status !== 'offline' ? (
                <LiveView deviceId={id} />
              ) : (
                <Empty>No live view: the device is {d.status} or has no video capture.</Empty>
              )}
            </div>
            <aside>
              <div className="pad" aria-label="Remote control">
                {PAD.map(([key, label]) => (
                  <button key={key} className={`key key-${key}`} onClick={() => press(key)} title={key}>
                    {label}
                  </button>
                ))}
              </div>
              <p className="muted small">Keyboard: arrows, Enter (OK), Esc (back), h, m, i, p (power), digits.</p>
              <button onClick={screenshot}>Take a screenshot</button>
              {error !== undefined && <ErrorBox error={error} />}
              {shot && (
                <div className="shot">
                  <a href={shot} download={`${d.device_key}-${Date.now()}.jpg`}>
                    <img src={shot} alt="Screenshot of the device" />
                    Download
                  </a>
                </div>
              )}
              <RunTestCase device={d} onStarted={runs.reload} />
            </aside>
          </div>
          <h2>Recent executions</h2>
          <Show state={runs} what="executions">
            {(p) =>
              p.items.length === 0 ? (
                <Empty>Nothing has run on this device yet.</Empty>
              ) : (
                <ul className="plain">
                  {p.items.map((e) => (
                    <li key={e.id}>
                      <Link to={`/executions/${e.id}`}>{e.testcase}</Link> <Badge value={e.status} />{' '}
                      <span className="muted small">{ago(e.created_at)}</span>
                    </li>
                  ))}
                </ul>
              )
            }
          </Show>
        </section>
      )}
    </Show>
  );
}

export function RunTestCase({ device, onStarted }: { device: Device; onStarted?: () => void }) {
  const cases = useAsync(() => api<Page<TestCase>>('/api/v1/testcases?limit=500'), []);
  const [name, setName] = useState('');
  const [error, setError] = useState<unknown>();
  const [started, setStarted] = useState<Execution>();
  async function run() {
    setError(undefined);
    try {
      const e = await api<Execution>('/api/v1/executions', { method: 'POST', body: { testcase: name, device: device.id } });
      setStarted(e);
      onStarted?.();
    } catch (e) {
      setError(e);
    }
  }
  return (
    <div className="card run">
      <h3>Run a test case</h3>
      <Show state={cases} what="test cases">
        {(p) => {
          const fit = p.items.filter((t) => !t.document?.device_model || t.document.device_model === device.model);
          return fit.length === 0 ? (
            <Empty>No test case for {device.model} yet.</Empty>
          ) : (
            <div className="row">
              <select value={name} onChange={(e) => setName(e.target.value)} aria-label="Test case">
                <option value="">Choose…</option>
                {fit.map((t) => (
                  <option key={t.id}>{t.name}</option>
                ))}
              </select>
              <button disabled={!name} onClick={run}>
                Run
              </button>
            </div>
          );
        }}
      </Show>
      {error !== undefined && <ErrorBox error={error as ApiError} />}
      {started && (
        <p>
          Queued: <Link to={`/executions/${started.id}`}>{started.testcase}</Link>
        </p>
      )}
    </div>
  );
}
