/**
 * Proxy process of the inspector benchmark (`node dist/bench/inspector-proxy.js --upstream PORT
 * [--inspect]`, forked by bench/inspector.ts): one `ProxyServer` (default options) in front of the
 * echo upstream, with `inspector({ server })` attached when `--inspect` is given, and nothing else,
 * so that this process's CPU time and RSS are the proxy's (and its inspector's).
 *
 * Reports the ports `proxy` and, with `--inspect`, `inspector`. Commands: `cpu` (user + system µs
 * so far), `memory` (`process.memoryUsage()`, unsettled: no forced GC while connections are open),
 * `state` (live connections, failures, and the inspector's pages, dropped pages and bytes kept).
 */
import { parseArgs } from 'node:util';
import { inspector } from '../src/inspector/inspector.js';
import { createProxyServer } from '../src/server/proxy-server.js';
import { HOST } from './common.js';
import { serveRole } from './server-ipc.js';

/** What `state` answers. */
export interface ProxyState {
  /** Live proxied connections. */
  active: number;
  /** Refused or failed connections so far. */
  failures: number;
  /** Pages on the inspector's event channel now (0 without an inspector). */
  pages: number;
  /** Pages the inspector dropped for not reading, so far. */
  droppedPages: number;
  /** Bytes the inspector keeps (rows and payload copies), across connections. */
  keptBytes: number;
}

const { values } = parseArgs({ options: { upstream: { type: 'string' }, inspect: { type: 'boolean', default: false } } });
const server = createProxyServer({ target: `ws://${HOST}:${Number(values.upstream)}/` });
let failures = 0;
server.on('refuse', () => {
  failures++;
});
server.on('error', () => {
  failures++;
});
const proxyPort = (await server.listen(0, HOST)).port;
const insp = values.inspect === true ? await inspector({ server }) : undefined;

const ports: Record<string, number> = { proxy: proxyPort };
if (insp !== undefined) ports['inspector'] = insp.address()!.port;

serveRole(ports, async (command) => {
  switch (command.cmd) {
    case 'cpu': {
      const cpu = process.cpuUsage();
      return cpu.user + cpu.system;
    }
    case 'memory':
      return process.memoryUsage();
    case 'state':
      return {
        active: server.connections.length,
        failures,
        // The channel and the hub are internal to the inspector: read here for the report only.
        pages: insp?.channel.size ?? 0,
        droppedPages: insp?.channel.dropped ?? 0,
        keptBytes: insp?.hub.bytes ?? 0,
      } satisfies ProxyState;
    default:
      throw new Error(`unknown command ${command.cmd}`);
  }
});
