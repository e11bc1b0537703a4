/**
 * Upstream process of the server benchmark (`node dist/bench/server-upstream.js`, forked by
 * bench/server.ts): a `ws` server on 127.0.0.1 that accepts every connection and echoes messages.
 * It runs alone so that neither the proxies' figures nor the clients' open files include it.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { HOST } from './common.js';
import { serveRole } from './server-ipc.js';

const wss = new WebSocketServer({ host: HOST, port: 0, perMessageDeflate: false, backlog: 4096 });
await once(wss, 'listening');
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(data, { binary: isBinary }));
});
serveRole({ upstream: (wss.address() as AddressInfo).port }, async (command) => {
  if (command.cmd === 'count') return wss.clients.size;
  throw new Error(`unknown command ${command.cmd}`);
});
