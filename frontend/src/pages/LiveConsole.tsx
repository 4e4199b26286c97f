import { FormEvent, useEffect, useRef, useState } from 'react';
import { openSocket } from '../api';

type Line = { seq: number; at_us: number; text: string };
type ConsoleMessage =
  | { type: 'console'; device: string; can_type: boolean }
  | { type: 'output'; lines: Line[]; partial: string; missed: number }
  | { type: 'refused'; message: string }
  | { type: 'typed'; bytes: number };

/** Lines kept on the page. */
const KEEP = 1000;

/** The device's console, live: read-only for viewers, a line input for the reservation holder. */
export function LiveConsole({ deviceId }: { deviceId: string }) {
  const [lines, setLines] = useState<Line[]>([]);
  const [partial, setPartial] = useState('');
  const [canType, setCanType] = useState(false);
  const [status, setStatus] = useState('connecting');
  const [note, setNote] = useState<string>();
  const [input, setInput] = useState('');
  const socket = useRef<WebSocket>();
  const view = useRef<HTMLPreElement>(null);

  useEffect(() => {
    const ws = openSocket(`/api/v1/devices/${deviceId}/console`);
    socket.current = ws;
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      const m = JSON.parse(ev.data) as ConsoleMessage;
      if (m.type === 'console') {
        setCanType(m.can_type);
        setStatus('live');
      } else if (m.type === 'output') {
        setLines((old) => {
          const last = old.length ? old[old.length - 1].seq : -1;
          const fresh = m.lines.filter((l) => l.seq > last);
          const gap: Line[] = m.missed > 0 ? [{ seq: last, at_us: 0, text: `[${m.missed} lines missed]` }] : [];
          return [...old, ...gap, ...fresh].slice(-KEEP);
        });
        setPartial(m.partial);
      } else if (m.type === 'refused') {
        setNote(m.message);
      } else {
        setNote(undefined);
      }
    };
    ws.onclose = (ev) => setStatus(ev.reason ? `closed: ${ev.reason}` : 'closed');
    return () => ws.close();
  }, [deviceId]);

  useEffect(() => {
    const el = view.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lines, partial]);

  function send(e: FormEvent) {
    e.preventDefault();
    socket.current?.send(JSON.stringify({ type: 'input', data: input + '\n' }));
    setInput('');
  }

  return (
    <section className="live-console" aria-label="Console">
      <h2>
        Console <span className="muted small">{status}</span>
      </h2>
      <pre className="console" ref={view} data-testid="live-console">
        {lines.map((l, i) => (
          <div key={i}>{l.text}</div>
        ))}
        {partial && <div>{partial}</div>}
      </pre>
      {canType ? (
        <form onSubmit={send} className="row">
          <input
            value={input}
            onChange={(e) => setInput(e.target.value)}
            aria-label="Console input"
            placeholder="Type a line, Enter sends it"
            maxLength={4000}
          />
          <button type="submit">Send</button>
        </form>
      ) : (
        <p className="muted small">Read-only: reserve the device to type into its console.</p>
      )}
      {note && <p className="error small">{note}</p>}
    </section>
  );
}
