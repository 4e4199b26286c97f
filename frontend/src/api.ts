// The public REST/WebSocket API, as the UI uses it. The API key lives in this browser's
// localStorage (per browser, as the sign-in page says) and goes in the Authorization header;
// WebSockets carry it as a subprotocol, since browsers cannot set their headers.

const KEY = 'labwright.key';

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

export function getKey(): string | null {
  return localStorage.getItem(KEY);
}

export function setKey(key: string | null) {
  if (key) localStorage.setItem(KEY, key);
  else localStorage.removeItem(KEY);
}

/** The Authorization header for `key` (default: the stored key), if there is one. */
function authHeaders(key: string | null = getKey()): Record<string, string> {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

type Options = { method?: string; body?: unknown; raw?: BodyInit; contentType?: string; key?: string };

async function request(path: string, opts: Options = {}): Promise<Response> {
  const headers = authHeaders(opts.key ?? getKey());
  let body: BodyInit | undefined;
  if (opts.raw !== undefined) {
    body = opts.raw;
    headers['Content-Type'] = opts.contentType ?? 'application/octet-stream';
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['Content-Type'] = 'application/json';
  }
  let res: Response;
  try {
    res = await fetch(path, { method: opts.method ?? 'GET', headers, body });
  } catch (e) {
    throw new ApiError(0, 'network', `The server cannot be reached (${String(e)})`);
  }
  if (!res.ok) {
    let code = 'http_' + res.status;
    let message = res.statusText || `HTTP ${res.status}`;
    try {
      const j = await res.json();
      if (j?.error) {
        code = j.error.code ?? code;
        message = j.error.message ?? message;
      }
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, code, message);
  }
  return res;
}

export async function api<T>(path: string, opts: Options = {}): Promise<T> {
  const res = await request(path, opts);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** A protected image (screenshot, reference) as an object URL. */
export async function blobUrl(path: string): Promise<string> {
  const res = await request(path);
  return URL.createObjectURL(await res.blob());
}

/** Reads a Server-Sent Events stream with the key in a header (EventSource cannot). */
export async function sse(
  path: string,
  onEvent: (event: string, data: string, id: string | null) => void,
  signal: AbortSignal,
): Promise<void> {
  const res = await fetch(path, { headers: { ...authHeaders(), Accept: 'text/event-stream' }, signal });
  if (!res.ok || !res.body) throw new ApiError(res.status, 'http_' + res.status, 'The log stream failed');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = 'message';
      let id: string | null = null;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        else if (line.startsWith('id:')) id = line.slice(3).trim();
      }
      if (data.length) onEvent(event, data.join('\n'), id);
    }
  }
}

/** Releases a reservation even while the page is being closed (keepalive request). */
export function releaseOnExit(deviceId: string) {
  fetch(`/api/v1/devices/${deviceId}/reservation`, {
    method: 'DELETE',
    keepalive: true,
    headers: authHeaders(),
  }).catch(() => {});
}

export function wsUrl(path: string): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}${path}`;
}

/** A WebSocket to the API, authenticated with the key as a subprotocol. */
export function openSocket(path: string): WebSocket {
  const key = getKey() ?? '';
  return new WebSocket(wsUrl(path), ['labwright', `bearer.${key}`]);
}

// Shapes of the API's answers (the parts the UI uses).
export type Page<T> = { items: T[]; total: number; limit: number; offset: number };
export type WhoAmI = { tenant_id: string; tenant_name: string; key_id: string; key_name: string; role: string };
export type Device = {
  id: string;
  host_id: string;
  host_name: string;
  device_key: string;
  name: string;
  model: string;
  driver: string;
  capabilities: string[];
  tags: string[];
  status: string;
  status_detail: string;
  last_seen_at: string;
  reservation: Reservation | null;
};
export type Reservation = { holder: string; key_id: string; since: string; ends_at: string; until: string; mine: boolean };
export type Host = {
  id: string;
  name: string;
  status: string;
  agent_version: string;
  last_seen_at: string;
  device_count: number;
};
export type Step = {
  index: number;
  path: string;
  kind: string;
  verdict: string;
  reason: string;
  started_at: string;
  duration_ms: number;
  screenshot_url: string | null;
  measurements: Record<string, number>;
};
export type Execution = {
  id: string;
  device_id: string;
  testcase: string;
  testcase_version: number;
  status: string;
  reason: string;
  queue_position: number | null;
  steps_total: number | null;
  created_at: string;
  finished_at: string | null;
  steps?: Step[];
};
export type TestCase = { id: string; name: string; version: number; created_at: string; source: string; document: any };
export type Tree = { model: string; version: number; created_at: string; document: any };
export type Session = { id: string; status: string; expires_at: string; container_id: string };
export type Build = {
  id: string;
  repo_url: string;
  ref: string | null;
  stage: string;
  reason: string;
  stack: string | null;
  dockerfile: string | null;
  image: string | null;
  created_at: string;
  log_tail: string[] | null;
  session: Session | null;
};
export type TerminalTicket = { ticket: string; url: string; expires_at: string };
