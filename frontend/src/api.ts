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

/** A protected text resource (an execution's console log). */
export async function text(path: string): Promise<string> {
  const res = await request(path);
  return res.text();
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

// Shapes of the API's answers: the REST views, generated into api-types.ts from the server's
// OpenAPI document (never edited by hand), under the names the pages use.
export type { ErrorBody, ErrorCode, Page, TerminalTicket, WhoAmI } from './api-types';
export type {
  BuildView as Build,
  DeviceView as Device,
  ExecutionView as Execution,
  HostView as Host,
  ReservationView as Reservation,
  SessionSummary as Session,
  StepView as Step,
  TestCaseView as TestCase,
  TreeView as Tree,
} from './api-types';
