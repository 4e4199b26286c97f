import { useMemo, useRef, useState } from 'react';
import { api, Device, Execution, Host, Page } from '../api';
import { ago, Badge, clock, Empty, Link, Show, useAsync, useEvents } from '../ui';

export function filterDevices(devices: Device[], status: string, model: string, q: string): Device[] {
  const needle = q.trim().toLowerCase();
  return devices.filter(
    (d) =>
      (!status || d.status === status) &&
      (!model || d.model === model) &&
      (!needle ||
        [d.name, d.device_key, d.model, d.host_name, ...d.tags].some((s) => s.toLowerCase().includes(needle))),
  );
}

export function Fleet() {
  const devices = useAsync(() => api<Page<Device>>('/api/v1/devices?limit=500'), []);
  const hosts = useAsync(() => api<Page<Host>>('/api/v1/hosts?limit=500'), []);
  const running = useAsync(() => api<Page<Execution>>('/api/v1/executions?status=running&limit=500'), []);
  const [status, setStatus] = useState('');
  const [model, setModel] = useState('');
  const [q, setQ] = useState('');
  const timer = useRef<number>();

  // Live: any fleet change (or a reconnect) reloads, coalesced; nothing polls.
  useEvents((e) => {
    if (e.kind === 'resync' || e.kind.startsWith('fleet.') || e.kind.startsWith('executions.')) {
      clearTimeout(timer.current);
      timer.current = window.setTimeout(() => {
        devices.reload();
        hosts.reload();
        running.reload();
      }, 150);
    }
  });

  const models = useMemo(
    () => [...new Set((devices.data?.items ?? []).map((d) => d.model))].sort(),
    [devices.data],
  );

  return (
    <section>
      <h1>Fleet</h1>
      <Show state={hosts} what="hosts">
        {(h) =>
          h.items.length === 0 ? (
            <Empty>
              No lab host has connected yet. Start a host-agent with an enrollment token (the local stack runs a
              simulated one).
            </Empty>
          ) : (
            <div className="hosts">
              {h.items.map((host) => (
                <div className="host card" key={host.id} data-testid="host">
                  <div className="row">
                    <strong>{host.name}</strong> <Badge value={host.status} />
                  </div>
                  <div className="muted small">
                    {host.device_count} device(s) · agent {host.agent_version || '?'} · seen {ago(host.last_seen_at)}
                  </div>
                </div>
              ))}
            </div>
          )
        }
      </Show>
      <div className="filters">
        <input placeholder="Search name, model, host, tag" value={q} onChange={(e) => setQ(e.target.value)} aria-label="Search devices" />
        <select value={status} onChange={(e) => setStatus(e.target.value)} aria-label="Status">
          <option value="">Any status</option>
          {['online', 'busy', 'offline', 'error'].map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
        <select value={model} onChange={(e) => setModel(e.target.value)} aria-label="Model">
          <option value="">Any model</option>
          {models.map((m) => (
            <option key={m}>{m}</option>
          ))}
        </select>
      </div>
      <Show state={devices} what="devices">
        {(d) => {
          const shown = filterDevices(d.items, status, model, q);
          if (d.items.length === 0) return <Empty>No devices yet.</Empty>;
          if (shown.length === 0) return <Empty>No device matches these filters.</Empty>;
          return (
            <table className="list">
              <thead>
                <tr>
                  <th>Device</th>
                  <th>Model</th>
                  <th>Host</th>
                  <th>Status</th>
                  <th>Health</th>
                  <th className="wide">Capabilities</th>
                  <th>Activity</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((dev) => (
                  <tr key={dev.id} data-testid="device-row">
                    <td>
                      <Link to={`/devices/${dev.id}`}>{dev.name || dev.device_key}</Link>
                    </td>
                    <td>{dev.model}</td>
                    <td>{dev.host_name}</td>
                    <td>
                      <Badge value={dev.status} />
                    </td>
                    <td>
                      <HealthBadge device={dev} />
                    </td>
                    <td className="wide small">{dev.capabilities.join(', ')}</td>
                    <td className="small">{activity(dev, running.data?.items ?? [])}</td>
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

/** A device's health as its host last checked it; the reason (the failing parts) on hover. */
export function HealthBadge({ device }: { device: Device }) {
  if (!device.health) return <span className="muted small">not checked</span>;
  const checked = device.health_checked_at ? ` (checked ${ago(device.health_checked_at)})` : '';
  return (
    <span title={(device.health_reason || device.health) + checked} data-testid="health">
      <Badge value={device.health} />
    </span>
  );
}

/** What a device is doing: the test case running on it and who holds it reserved, else its
 * status detail. */
function activity(dev: Device, running: Execution[]) {
  const run = running.find((e) => e.device_id === dev.id);
  const r = dev.reservation;
  const held = r && `reserved by ${r.mine ? 'you' : r.holder} until ${clock(r.ends_at)}`;
  if (!run) return held ?? (dev.status_detail || '—');
  return (
    <>
      running <Link to={`/executions/${run.id}`}>{run.testcase}</Link>
      {held && ` · ${held}`}
    </>
  );
}
