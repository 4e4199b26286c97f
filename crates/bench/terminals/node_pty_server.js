// Baseline for scripts/bench-terminal: node-pty + ws, the core of the xterm.js demo server and
// wetty: one pty per WebSocket running `docker exec -it <container> sh`, output sent as it comes.
'use strict';
const pty = require('node-pty');
const { WebSocketServer } = require('ws');

const [container, port] = process.argv.slice(2);
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(port) });
wss.on('connection', (ws) => {
  const term = pty.spawn('docker', ['exec', '-it', container, 'sh'], {
    name: 'xterm-256color', cols: 80, rows: 24, env: process.env,
  });
  term.onData((data) => { if (ws.readyState === 1) ws.send(data); });
  term.onExit(() => ws.close());
  ws.on('message', (msg) => term.write(msg.toString()));
  ws.on('close', () => term.kill());
});
wss.on('listening', () => console.log('node-pty listening'));
