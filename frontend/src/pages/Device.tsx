import { useEffect, useState } from 'react';
import { api, ApiError, blobUrl, Device, Execution, Page, releaseOnExit, TestCase, WhoAmI } from '../api';
import { ago, Badge, clock, Empty, ErrorBox, Link, Show, useAsync, useEvents } from '../ui';
import { LiveConsole } from './LiveConsole';
import { HealthBadge } from './Fleet';
import { LiveView } from './LiveView';

const PAD: [string, string][] = [
  ['power', 'Power'],
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
  ['play_pause', 'Play'],
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
  // The previous screenshot's object URL goes when a new one comes, and with the page.
  useEffect(
    () => () => {
      if (shot) URL.revokeObjectURL(shot);
    },
    [shot],
  );

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
          <HealthSection device={d} />
          <div className="device-layout">
            <div>
              {d.capabilities.includes('video_capture') && d.status !== 'offline' ? (
                <LiveView deviceId={id} />
              ) : (
                <Empty>No live view: the device is {d.status} or has no video capture.</Empty>
              )}
              {d.capabilities.includes('console') && d.status !== 'offline' && (
                <LiveConsole key={`${id}-${d.reservation?.mine ? 'mine' : 'not'}`} deviceId={id} />
              )}
            </div>
            <aside>
              <ReservationPanel device={d} onChange={device.reload} />
              {d.capabilities.includes('power') && (
                <MainsPower device={d} onChange={device.reload} />
              )}
              <div className="pad" aria-label="Remote control">
                {PAD.map(([key, label]) => (
                  <button
                    key={key}
                    className={`key key-${key}`}
                    onClick={() => press(key)}
                    title={key}
                    disabled={!!d.reservation && !d.reservation.mine}
                  >
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
  const cases = useAsync(() => api<TestCase[]>('/api/v1/testcases'), []);
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
          const fit = p.filter((t) => !t.document?.device_model || t.document.device_model === device.model);
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


/** Book the device for a time box; this page keeps the booking alive and gives it back when it
 * goes away (or the time box ends). Others see who holds it and until when. */
function ReservationPanel({ device, onChange }: { device: Device; onChange: () => void }) {
  const r = device.reservation;
  const [minutes, setMinutes] = useState(30);
  const [error, setError] = useState<unknown>();
  const mine = !!r?.mine;

  useEffect(() => {
    if (!mine) return;
    const renew = window.setInterval(() => {
      api(`/api/v1/devices/${device.id}/reservation`, { method: 'PUT' }).catch(() => onChange());
    }, 20_000);
    const leave = () => releaseOnExit(device.id);
    window.addEventListener('pagehide', leave);
    return () => {
      window.clearInterval(renew);
      window.removeEventListener('pagehide', leave);
      leave();
    };
  }, [mine, device.id, onChange]);

  async function call(method: string, body?: unknown) {
    setError(undefined);
    try {
      await api(`/api/v1/devices/${device.id}/reservation`, { method, body });
    } catch (e) {
      setError(e);
    }
    onChange();
  }

  return (
    <div className="card reservation" data-testid="reservation">
      {!r && (
        <div className="row">
          <button onClick={() => call('POST', { minutes })}>Reserve</button>
          <select value={minutes} onChange={(e) => setMinutes(Number(e.target.value))} aria-label="Reservation length">
            {[15, 30, 60, 120, 240].map((m) => (
              <option key={m} value={m}>
                {m} min
              </option>
            ))}
          </select>
          <span className="muted small">Only you can control it while this page is open.</span>
        </div>
      )}
      {r && mine && (
        <div className="row">
          <span>
            Reserved by you until <strong>{clock(r.ends_at)}</strong>
          </span>
          <button className="link" onClick={() => call('DELETE')}>
            Release
          </button>
        </div>
      )}
      {r && !mine && (
        <div className="row">
          <span>
            Reserved by <strong>{r.holder}</strong> until {clock(r.ends_at)}: only they can control it.
          </span>
        </div>
      )}
      {error !== undefined && <ErrorBox error={error} />}
    </div>
  );
}

/** The device's health as its host last checked it (at start, every minute, and right after a
 * part is unplugged or comes back): the reason names each failing part. */
export function HealthSection({ device }: { device: Device }) {
  return (
    <div className="card health" data-testid="health-section">
      <div className="row">
        <strong>Health</strong> <HealthBadge device={device} />
        {device.health_checked_at && <span className="muted small">checked {ago(device.health_checked_at)}</span>}
      </div>
      {device.health_reason && <p className="small" data-testid="health-reason">{device.health_reason}</p>}
    </div>
  );
}

/** Whether `me` may switch the device's power: operators and admins, and never while another key
 * holds the device's reservation. */
export function maySwitchPower(device: Device, role: string | undefined): boolean {
  if (role !== 'operator' && role !== 'admin') return false;
  return !device.reservation || device.reservation.mine;
}

/** The device's mains power (relay, smart plug): its last known state, the last switch (when,
 * by whom) and on / off / cycle for those allowed to. */
function MainsPower({ device, onChange }: { device: Device; onChange: () => void }) {
  const me = useAsync(() => api<WhoAmI>('/api/v1/whoami'), []);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const allowed = maySwitchPower(device, me.data?.role);
  async function act(action: string) {
    setBusy(true);
    setError(undefined);
    try {
      await api<{ state: string }>(`/api/v1/devices/${device.id}/power`, { method: 'POST', body: { action } });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
      onChange();
    }
  }
  // The stored state may be old: read it from the switch when the page opens.
  useEffect(() => {
    act('state');
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [device.id]);
  const by = device.power_switched_by;
  return (
    <div className="card power">
      <div className="row">
        <strong>Mains power</strong>
        <span data-testid="power-state">{busy ? '…' : (device.power_state ?? 'unknown')}</span>
        <button className="link" disabled={busy} onClick={() => act('state')} title="Read the state from the switch">
          Refresh
        </button>
      </div>
      {device.power_switched_at && by && (
        <p className="muted small" data-testid="power-switched">
          Switched {ago(device.power_switched_at)} by {by.kind === 'execution' ? 'execution ' : ''}
          {by.kind === 'execution' ? <Link to={`/executions/${by.id}`}>{by.name}</Link> : by.name}
        </p>
      )}
      {allowed && (
        <div className="row">
          <button disabled={busy} onClick={() => act('on')}>
            On
          </button>
          <button disabled={busy} onClick={() => act('off')}>
            Off
          </button>
          <button disabled={busy} onClick={() => act('cycle')}>
            Cycle
          </button>
        </div>
      )}
      {error !== undefined && <ErrorBox error={error} />}
    </div>
  );
}
