import { useEffect, useRef, useState } from 'react';
import { Terminal as Xterm } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { api, TerminalTicket } from '../api';
import { closeReason } from './terminal-codes';

/** An interactive shell in a session's container, through the terminal gateway. */
export function SessionTerminal({ sessionId }: { sessionId: string }) {
  const host = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState('connecting');
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    const term = new Xterm({ cursorBlink: true, fontSize: 14, convertEol: false, scrollback: 5000 });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(host.current!);
    fit.fit();
    let ws: WebSocket | undefined;
    let disposed = false;
    const enc = new TextEncoder();
    api<TerminalTicket>(`/api/v1/sessions/${sessionId}/terminal`, { method: 'POST' }).then(
      (t) => {
        if (disposed) return;
        const url = `${t.url}&cols=${term.cols}&rows=${term.rows}`;
        ws = new WebSocket(url);
        ws.binaryType = 'arraybuffer';
        ws.onmessage = (m) => {
          if (typeof m.data === 'string') {
            const ev = JSON.parse(m.data);
            if (ev.type === 'ready') setStatus('connected');
            if (ev.type === 'exit') setStatus(`exited with code ${ev.code}`);
          } else term.write(new Uint8Array(m.data as ArrayBuffer));
        };
        ws.onclose = (e) => !disposed && setStatus(closeReason(e.code, e.reason));
        term.onData((d) => ws?.readyState === WebSocket.OPEN && ws.send(enc.encode(d)));
        term.onResize(({ cols, rows }) => {
          if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'resize', cols, rows }));
        });
        term.focus();
      },
      (e) => setStatus(`No terminal: ${e.message}`),
    );
    // The terminal follows its box (which follows the window).
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(host.current!);
    return () => {
      disposed = true;
      observer.disconnect();
      ws?.close();
      term.dispose();
    };
  }, [sessionId, generation]);

  return (
    <div className="terminal">
      <div className="row small">
        <span data-testid="terminal-status">{status}</span>
        {status !== 'connected' && status !== 'connecting' && (
          <button className="link" onClick={() => setGeneration((g) => g + 1)}>
            Reconnect
          </button>
        )}
      </div>
      <div ref={host} className="xterm-host" data-testid="terminal" />
    </div>
  );
}
