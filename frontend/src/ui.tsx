import { ReactNode, useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { ApiError, openSocket } from './api';

// --- routing: the URL fragment (#/devices/<id>), so the server serves one page ---

function currentHash() {
  return location.hash.replace(/^#/, '') || '/';
}

export function useRoute(): string[] {
  const hash = useSyncExternalStore(
    (cb) => {
      window.addEventListener('hashchange', cb);
      return () => window.removeEventListener('hashchange', cb);
    },
    currentHash,
  );
  return hash.split('?')[0].split('/').filter(Boolean).map(decodeURIComponent);
}

export function navigate(path: string) {
  location.hash = path;
}

export function Link({ to, children, className }: { to: string; children: ReactNode; className?: string }) {
  return (
    <a href={'#' + to} className={className}>
      {children}
    </a>
  );
}

// --- data loading with explicit loading / error / empty states ---

export type Async<T> = { data: T | undefined; error: Error | undefined; loading: boolean; reload: () => void };

export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error) => live && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

export function Loading({ what }: { what?: string }) {
  return (
    <div className="state loading" role="status">
      Loading{what ? ` ${what}` : ''}…
    </div>
  );
}

export function ErrorBox({ error, retry }: { error: unknown; retry?: () => void }) {
  const e = error as ApiError | Error;
  const code = e instanceof ApiError ? e.code : undefined;
  return (
    <div className="state error" role="alert">
      <strong>{code === 'unauthenticated' ? 'Your key is not valid any more.' : 'Something went wrong.'}</strong>{' '}
      <span className="message">{e?.message ?? String(error)}</span>
      {code && <code className="code">{code}</code>}
      {retry && (
        <button className="link" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="state empty">{children}</div>;
}

export function Badge({ value }: { value: string }) {
  return <span className={`badge badge-${value.replace(/[^a-z_]/gi, '')}`}>{value}</span>;
}

export function Show<T>({ state, what, children }: { state: Async<T>; what: string; children: (data: T) => ReactNode }) {
  if (state.data !== undefined) return <>{children(state.data)}</>;
  if (state.error) return <ErrorBox error={state.error} retry={state.reload} />;
  return <Loading what={what} />;
}

/** Hours and minutes of a time, in the browser's locale. */
export function clock(iso: string): string {
  return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export function ago(iso: string | null | undefined): string {
  if (!iso) return '—';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

// --- live events: one WebSocket per page, shared by every component that listens ---

export type LiveEvent = { kind: string; event?: any };
type Listener = (e: LiveEvent) => void;
const listeners = new Set<Listener>();
let socket: WebSocket | null = null;
let retry = 500;

function connectEvents() {
  if (socket || listeners.size === 0) return;
  const ws = openSocket('/api/v1/events');
  socket = ws;
  ws.onopen = () => {
    retry = 500;
    // Whatever happened while disconnected: reload.
    listeners.forEach((l) => l({ kind: 'resync' }));
  };
  ws.onmessage = (m) => {
    try {
      const e = JSON.parse(m.data) as LiveEvent;
      listeners.forEach((l) => l(e));
    } catch {
      /* ignore */
    }
  };
  ws.onclose = () => {
    // Only the current socket reconnects: one closed on purpose (its page left) has been
    // replaced already, and must not drop its successor.
    if (socket !== ws) return;
    socket = null;
    if (listeners.size > 0) {
      setTimeout(connectEvents, retry);
      retry = Math.min(retry * 2, 10_000);
    }
  };
}

/** Calls `onEvent` for every event of the tenant (and `resync` after reconnects). */
export function useEvents(onEvent: Listener) {
  const ref = useRef(onEvent);
  ref.current = onEvent;
  useEffect(() => {
    const l: Listener = (e) => ref.current(e);
    listeners.add(l);
    connectEvents();
    return () => {
      listeners.delete(l);
      if (listeners.size === 0 && socket) {
        socket.close();
        socket = null;
      }
    };
  }, []);
}
