/**
 * Fixtures of the ProxyServer specs: a server in front of `ws` upstreams, and plain HTTP upgrade
 * requests to any path. Everything on 127.0.0.1, released after each test by `releaseAll()`.
 */
import http from 'node:http';
import { type ProxyServer, type ProxyServerOptions, createProxyServer } from '../../src/index.js';
import { type PlainResponse, upgradeHeaders, upgradeRequest } from '../helpers/proxy-peers.js';
import { echo, startUpstream } from '../helpers/proxy-harness.js';
import { onCleanup } from '../proxy/rig.js';

/** A ws upstream that echoes and records request URLs and headers. */
export async function echoUpstream(): Promise<{ url: string; requests: http.IncomingMessage[]; connections: () => number }> {
  const requests: http.IncomingMessage[] = [];
  const upstream = await startUpstream((ws, req) => {
    requests.push(req);
    ws.on('error', () => undefined);
    echo(ws);
  }, { handleProtocols: (protocols) => (protocols.has('chat') ? 'chat' : false) });
  onCleanup(() => upstream.close());
  return { url: upstream.url, requests, connections: () => requests.length };
}

/** A listening ProxyServer, drained (quickly) after the test. */
export async function listening(options: ProxyServerOptions): Promise<{ server: ProxyServer; port: number; url: string }> {
  const server = createProxyServer(options);
  const { port } = await server.listen(0, '127.0.0.1');
  onCleanup(() => server.close({ timeout: 200 }));
  return { server, port, url: `ws://127.0.0.1:${port}` };
}

/** A plain HTTP request with upgrade headers to `path`; resolves with the non-101 response. */
export function upgradeTo(port: number, path: string, extra: Record<string, string> = {}): Promise<PlainResponse> {
  return upgradeRequest(port, upgradeHeaders(extra), 'GET', path);
}

/** A plain GET; resolves with status and body. */
export function get(port: number, path: string): Promise<PlainResponse> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    }).on('error', reject);
  });
}
