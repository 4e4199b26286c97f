// Live view benchmark (scripts/bench-live): the simulated box's live player (720p, motion every
// frame) watched through the real web UI in headless Chromium pages on loopback. Each page
// measures frames per second and capture-to-display latency (capture time from the host, carried
// with the frame; display = drawn on the canvas). One viewer, then ten at once; the host-agent's
// CPU during each window shows what the viewers cost the host.
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const base = process.env.LABWRIGHT_UI_URL ?? 'http://127.0.0.1:8080';
const key = readFileSync(process.env.LABWRIGHT_API_KEY_FILE, 'utf8').trim();
const hostPid = Number(readFileSync(process.env.HOST_AGENT_PID_FILE, 'utf8').trim());
const seconds = Number(process.env.SECONDS_PER_RUN ?? 10);
const auth = { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' };

async function api(path, body) {
  const res = await fetch(base + path, { method: body ? 'POST' : 'GET', headers: auth, body: body && JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
}

function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] : NaN;
};

const devices = await api('/api/v1/devices?status=online&limit=50');
const box = devices.items.find((d) => d.device_key === (process.env.DEVICE_KEY ?? 'stb-2'));
if (!box) throw new Error('no simulated box online');
// To the live player: every frame moves there.
for (const k of ['home', 'up', 'left', 'left', 'left', 'ok']) {
  await api(`/api/v1/devices/${box.id}/press`, { key: k });
  await new Promise((r) => setTimeout(r, 400));
}
await new Promise((r) => setTimeout(r, 2000));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});

async function run(viewers) {
  const pages = [];
  for (let i = 0; i < viewers; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    await ctx.addInitScript((k) => localStorage.setItem('labwright.key', k), key);
    const page = await ctx.newPage();
    await page.goto(`${base}/#/devices/${box.id}`);
    await page.waitForFunction(() => (window.__lwLive?.frames ?? 0) > 5, null, { timeout: 60_000 });
    pages.push(page);
  }
  // Warm: 2 s, then measure a window.
  await new Promise((r) => setTimeout(r, 2000));
  const start = await Promise.all(pages.map((p) => p.evaluate(() => ({ f: window.__lwLive.frames, n: window.__lwLive.latencies.length }))));
  const cpu0 = cpuTicks(hostPid);
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu1 = cpuTicks(hostPid);
  const dt = (Date.now() - t0) / 1000;
  const per = await Promise.all(
    pages.map((p, i) =>
      p.evaluate(([f0, n0]) => ({ frames: window.__lwLive.frames - f0, lat: window.__lwLive.latencies.slice(n0) }), [start[i].f, start[i].n]),
    ),
  );
  for (const p of pages) await p.context().close();
  const fps = per.map((v) => v.frames / dt);
  const lat = per.flatMap((v) => v.lat);
  return {
    viewers,
    fpsMin: Math.min(...fps),
    fpsMean: fps.reduce((a, b) => a + b, 0) / fps.length,
    p50: q(lat, 0.5),
    p95: q(lat, 0.95),
    hostCpu: ((cpu1 - cpu0) / 100 / dt) * 100,
  };
}

// The host's cost with nobody watching, for reference.
const idle0 = cpuTicks(hostPid);
await new Promise((r) => setTimeout(r, 3000));
const idleCpu = ((cpuTicks(hostPid) - idle0) / 100 / 3) * 100;

const one = await run(1);
const ten = await run(10);
await browser.close();

console.log('\n| viewers | fps per viewer (min / mean) | capture-to-display p50 | p95 | host-agent CPU |');
console.log('|---|---|---|---|---|');
console.log(`| none | — | — | — | ${idleCpu.toFixed(1)} % |`);
for (const r of [one, ten]) {
  console.log(
    `| ${r.viewers} | ${r.fpsMin.toFixed(1)} / ${r.fpsMean.toFixed(1)} | ${r.p50.toFixed(1)} ms | ${r.p95.toFixed(1)} ms | ${r.hostCpu.toFixed(1)} % |`,
  );
}
console.log(
  `\none viewer: ${one.fpsMean.toFixed(1)} fps (goal >= 30: ${one.fpsMean >= 30 ? 'met' : 'MISSED'}), p95 ${one.p95.toFixed(1)} ms (goal <= 100: ${one.p95 <= 100 ? 'met' : 'MISSED'})`,
);
console.log(
  `ten viewers: host CPU ${ten.hostCpu.toFixed(1)} % against ${one.hostCpu.toFixed(1)} % for one (one stream from the host either way)`,
);
