/**
 * Logging helpers of the proxy: the default logger and the per-frame debug line.
 *
 * @packageDocumentation
 */
import { debuglog } from 'node:util';
import type { Frame } from '../frame.js';
import type { Logger, ProxyRole } from './options.js';

/** Characters of payload shown in a frame's debug line before `[...]`. */
const PREVIEW = 24;

/**
 * The default logger: every level goes to `util.debuglog('ws-frame-proxy')`, so nothing is printed
 * unless `NODE_DEBUG=ws-frame-proxy` is set.
 */
export function defaultLogger(): Logger {
  // One for the process: a logger per connection would cost every idle connection its closures.
  if (shared === undefined) {
    const log = debuglog('ws-frame-proxy');
    shared = { debug: log, info: log, warn: log, error: log };
  }
  return shared;
}

let shared: Logger | undefined;

/**
 * One debug line for a frame on its way through the proxy, e.g.
 * `[frame] client --> upstream text len=12 fin=true "hello world!"`; close frames are drawn `--x` /
 * `x--`, frames from the upstream `<--`.
 *
 * @param from - the side the frame came from
 * @param frame - the frame
 * @param aggregating - whether fragments are being aggregated
 */
export function describeFrame(from: ProxyRole, frame: Frame, aggregating: boolean): string {
  const close = frame.type === 'close';
  const arrow = from === 'client' ? (close ? 'client --x upstream' : 'client --> upstream') : (close ? 'client x-- upstream' : 'client <-- upstream');
  const code = frame.code === undefined ? '' : ` code=${frame.code}`;
  const text = frame.payload.toString('utf8', 0, Math.min(frame.payload.length, PREVIEW * 4));
  const preview = text.length > PREVIEW ? `${JSON.stringify(text.slice(0, PREVIEW))}[...]` : JSON.stringify(text);
  return `[frame] ${arrow} ${frame.type}${code} len=${frame.payload.length} fin=${frame.fin} aggregating=${aggregating} ${preview}`;
}
