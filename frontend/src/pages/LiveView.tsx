import { useEffect, useRef, useState } from 'react';
import { openSocket } from '../api';
import type { LiveMessage, ViewerMessage } from '../api-types';

export type LiveStats = { frames: number; fps: number; latencyMs: number; seq: number; status: string; tier?: string };

/** Parses the 24-byte header of a live frame: captured-at µs, seq, width, height (big-endian). */
export function parseFrame(buf: ArrayBuffer) {
  const v = new DataView(buf);
  return {
    capturedAtUs: Number(v.getBigUint64(0)),
    seq: Number(v.getBigUint64(8)),
    width: v.getUint32(16),
    height: v.getUint32(20),
    jpeg: new Uint8Array(buf, 24),
  };
}

declare global {
  interface Window {
    __lwLive?: { frames: number; latencies: number[]; started: number };
  }
}

/** The device's screen, drawn as frames arrive; each drawn frame is acknowledged, which is
 * what lets the server pace this viewer to what its connection and this page keep up with. */
export function LiveView({ deviceId }: { deviceId: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [stats, setStats] = useState<LiveStats>({ frames: 0, fps: 0, latencyMs: 0, seq: -1, status: 'connecting' });

  useEffect(() => {
    const ws = openSocket(`/api/v1/devices/${deviceId}/live`);
    ws.binaryType = 'arraybuffer';
    let frames = 0;
    let windowFrames = 0;
    let windowStart = performance.now();
    let closed = false;
    const probe = { frames: 0, latencies: [] as number[], started: performance.now() };
    window.__lwLive = probe;
    let drawing = Promise.resolve();
    ws.onmessage = (m) => {
      if (typeof m.data === 'string') {
        // `live` first; `quality` when the server moves this viewer between the full stream and
        // the light one (half size) because of the pace it keeps.
        const msg = JSON.parse(m.data) as LiveMessage;
        setStats((s) => ({ ...s, status: 'live', tier: msg.type === 'quality' ? msg.tier : s.tier }));
        return;
      }
      const f = parseFrame(m.data as ArrayBuffer);
      // A frame that fails to decode is skipped; it must not stop the ones after it.
      drawing = drawing.catch(() => {}).then(async () => {
        if (closed) return;
        const bitmap = await createImageBitmap(new Blob([f.jpeg], { type: 'image/jpeg' }));
        const c = canvas.current;
        if (c) {
          if (c.width !== f.width || c.height !== f.height) {
            c.width = f.width;
            c.height = f.height;
          }
          c.getContext('2d')?.drawImage(bitmap, 0, 0);
        }
        bitmap.close();
        const latency = Date.now() - f.capturedAtUs / 1000;
        frames++;
        windowFrames++;
        probe.frames = frames;
        probe.latencies.push(latency);
        if (probe.latencies.length > 10_000) probe.latencies.shift();
        if (ws.readyState === WebSocket.OPEN) {
          const ack: ViewerMessage = { type: 'ack', seq: f.seq };
          ws.send(JSON.stringify(ack));
        }
        const now = performance.now();
        if (now - windowStart >= 500) {
          const fps = (windowFrames * 1000) / (now - windowStart);
          windowFrames = 0;
          windowStart = now;
          setStats((s) => ({ ...s, frames, fps, latencyMs: latency, seq: f.seq, status: 'live' }));
        } else {
          setStats((s) => ({ ...s, frames, seq: f.seq, latencyMs: latency }));
        }
      });
    };
    ws.onclose = (e) => {
      if (!closed) setStats((s) => ({ ...s, status: e.reason ? `closed: ${e.reason}` : 'disconnected' }));
    };
    return () => {
      closed = true;
      ws.close();
    };
  }, [deviceId]);

  return (
    <div className="live">
      <canvas ref={canvas} width={1280} height={720} data-testid="live-canvas" data-frames={stats.frames} data-seq={stats.seq} />
      <div className="live-stats small muted" data-testid="live-stats">
        {stats.status} · {stats.fps.toFixed(0)} fps · {Math.max(0, stats.latencyMs).toFixed(0)} ms · frame {stats.frames}
        {stats.tier === 'light' && ' · reduced quality (slow connection)'}
      </div>
    </div>
  );
}
