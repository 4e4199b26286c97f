import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { filterDevices, HealthBadge } from './Fleet';
import { HealthSection, maySwitchPower } from './Device';
import { parseFrame } from './LiveView';
import { closeReason } from './terminal-codes';
import { referenceOf } from './Executions';
import { layout } from './Trees';
import { SignIn } from './SignIn';
import { ErrorBox } from '../ui';
import { ApiError, Device } from '../api';

const dev = (over: Partial<Device>): Device => ({
  id: 'd',
  host_id: 'h',
  host_name: 'rack-1',
  device_key: 'stb-1',
  name: 'Living room box',
  model: 'sim-stb',
  driver: 'simulated',
  capabilities: ['video_capture'],
  tags: ['4k'],
  status: 'online',
  status_detail: '',
  last_seen_at: new Date().toISOString(),
  reservation: null,
  health: null,
  health_reason: '',
  health_checked_at: null,
  power_state: null,
  power_read_at: null,
  power_switched_at: null,
  power_switched_by: null,
  ...over,
});

describe('fleet filters', () => {
  const all = [dev({ id: '1' }), dev({ id: '2', status: 'offline', model: 'tv-x', tags: [] }), dev({ id: '3', host_name: 'rack-2' })];
  it('filter by status, model and free text over names, hosts and tags', () => {
    expect(filterDevices(all, 'online', '', '').map((d) => d.id)).toEqual(['1', '3']);
    expect(filterDevices(all, '', 'tv-x', '').map((d) => d.id)).toEqual(['2']);
    expect(filterDevices(all, '', '', 'RACK-2').map((d) => d.id)).toEqual(['3']);
    expect(filterDevices(all, '', '', '4k').map((d) => d.id)).toEqual(['1', '3']);
    expect(filterDevices(all, 'offline', 'sim-stb', '')).toEqual([]);
  });
});

describe('device health and power', () => {
  it('show the health badge and the reason of a degraded device', () => {
    render(<HealthSection device={dev({ health: 'degraded', health_reason: 'console: unavailable (gone)', health_checked_at: new Date().toISOString() })} />);
    expect(screen.getByText('degraded').className).toContain('badge-degraded');
    expect(screen.getByTestId('health-reason').textContent).toBe('console: unavailable (gone)');
  });
  it('say when a device has not been checked yet', () => {
    render(<HealthBadge device={dev({})} />);
    expect(screen.getByText('not checked')).toBeTruthy();
  });
  it('offer the power switch to operators and admins, not to viewers or while another key holds it', () => {
    const held = (mine: boolean) =>
      dev({ reservation: { holder: 'bob', key_id: 'k', since: '', ends_at: '', until: '', mine } });
    expect(maySwitchPower(dev({}), 'operator')).toBe(true);
    expect(maySwitchPower(dev({}), 'admin')).toBe(true);
    expect(maySwitchPower(dev({}), 'viewer')).toBe(false);
    expect(maySwitchPower(dev({}), undefined)).toBe(false);
    expect(maySwitchPower(held(false), 'operator')).toBe(false);
    expect(maySwitchPower(held(true), 'operator')).toBe(true);
  });
});

describe('live frames', () => {
  it('parse the 24-byte header before the JPEG', () => {
    const buf = new ArrayBuffer(28);
    const v = new DataView(buf);
    v.setBigUint64(0, 1_700_000_000_123_456n);
    v.setBigUint64(8, 42n);
    v.setUint32(16, 1280);
    v.setUint32(20, 720);
    new Uint8Array(buf, 24).set([0xff, 0xd8, 0xff, 0xd9]);
    const f = parseFrame(buf);
    expect([f.capturedAtUs, f.seq, f.width, f.height]).toEqual([1_700_000_000_123_456, 42, 1280, 720]);
    expect([...f.jpeg]).toEqual([0xff, 0xd8, 0xff, 0xd9]);
  });
});

describe('small helpers', () => {
  it('explain terminal close codes', () => {
    expect(closeReason(4410, 'the session ended')).toBe('The session ended. (the session ended)');
    expect(closeReason(4999, '')).toBe('The connection closed.');
  });
  it('find the reference image of an image check', () => {
    const doc = { steps: [{ press: 'ok' }, { verify_image: { reference: 'home-title' } }] };
    expect(referenceOf(doc, 'steps[1]')).toBe('home-title');
    expect(referenceOf(doc, 'steps[0]')).toBeUndefined();
    expect(referenceOf(undefined, 'steps[1]')).toBeUndefined();
  });
  it('lay screens out without overlap', () => {
    const pos = layout([{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }], 720, 520);
    const pts = [...pos.values()];
    for (let i = 0; i < pts.length; i++)
      for (let j = i + 1; j < pts.length; j++) expect(Math.hypot(pts[i].x - pts[j].x, pts[i].y - pts[j].y)).toBeGreaterThan(90);
  });
});

describe('error states', () => {
  it('show the API message and its code', () => {
    render(<ErrorBox error={new ApiError(409, 'conflict', 'device stb-1 is leased by execution 42')} />);
    expect(screen.getByRole('alert').textContent).toContain('device stb-1 is leased by execution 42');
    expect(screen.getByRole('alert').textContent).toContain('conflict');
  });
});

describe('sign-in', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    localStorage.clear();
  });

  it('refuses a malformed key without asking the server', async () => {
    const fetch = vi.fn();
    vi.stubGlobal('fetch', fetch);
    render(<SignIn onSignedIn={() => {}} />);
    fireEvent.change(screen.getByLabelText('API key'), { target: { value: 'not-a-key' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect((await screen.findByRole('alert')).textContent).toMatch(/lw_ followed by 64/);
    expect(fetch).not.toHaveBeenCalled();
  });

  it('remembers a key the server accepts and shows the server message for one it refuses', async () => {
    const key = 'lw_' + 'a'.repeat(64);
    const who = { tenant_id: 't', tenant_name: 'default', key_id: 'k', key_name: 'admin', role: 'admin' };
    const fetch = vi
      .fn()
      .mockResolvedValueOnce(new Response(JSON.stringify({ error: { code: 'unauthenticated', message: 'unknown or revoked API key' } }), { status: 401 }))
      .mockResolvedValueOnce(new Response(JSON.stringify(who), { status: 200 }));
    vi.stubGlobal('fetch', fetch);
    const signedIn = vi.fn();
    render(<SignIn onSignedIn={signedIn} />);
    fireEvent.change(screen.getByLabelText('API key'), { target: { value: key } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect((await screen.findByRole('alert')).textContent).toContain('unknown or revoked API key');
    expect(localStorage.getItem('labwright.key')).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    await waitFor(() => expect(signedIn).toHaveBeenCalledWith(who));
    expect(localStorage.getItem('labwright.key')).toBe(key);
    expect(fetch.mock.calls[1][1].headers.Authorization).toBe(`Bearer ${key}`);
  });
});
