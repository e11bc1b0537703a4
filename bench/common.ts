/**
 * Helpers shared by the benchmarks: the figures (medians, percentiles, how a number is printed),
 * the machine they ran on, and waiting.
 */
import { execFileSync } from 'node:child_process';
import type net from 'node:net';
import os from 'node:os';

/** The loopback address everything listens on. */
export const HOST = '127.0.0.1';

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `condition` until it holds or `capMs` have passed; past the cap it warns and goes on (a
 * figure taken a little early beats a benchmark that hangs).
 *
 * @param what - what is awaited, for the warning
 * @param pollMs - the pause between two polls
 */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, capMs: number, pollMs: number): Promise<void> {
  const deadline = Date.now() + capMs;
  while (!(await condition()) && Date.now() < deadline) await sleep(pollMs);
  if (!(await condition())) console.error(`warning: still waiting for ${what} after ${capMs} ms; going on`);
}

/** Listens on {@link HOST}, an ephemeral port; resolves with the port. */
export function listen(server: net.Server, backlog: number): Promise<number> {
  return new Promise((resolve) => {
    server.listen({ host: HOST, port: 0, backlog }, () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** The median of the finite values (NaN marks a missing sample), NaN when there is none. */
export function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((x, y) => x - y);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The median of the per-round ratios `pick(mine[i]) / pick(theirs[i])`: the rows of one round ran
 * side by side, so their ratio is steadier than the ratio of two medians.
 */
export function medianRatio<T>(mine: T[], theirs: T[], pick: (sample: T) => number): number {
  return median(mine.map((x, i) => (theirs[i] === undefined ? NaN : pick(x) / pick(theirs[i]!))));
}

/** The value at fraction `p` of an ascending array, NaN when it is empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** A number with `digits` decimals and thousands separators, `-` when there is none. */
export function fmt(value: number, digits: number): string {
  // NaN (no sample) crosses the IPC channel as null, which is not finite either.
  if (!Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** `node <version>, <cores> x <CPU model>`: the start of a benchmark's first line. */
export function machine(): string {
  const cpus = os.cpus();
  // Node's flags change the figures (e.g. --initial-old-space-size for large messages: see
  // docs/performance.md), so the header says which ran.
  const flags = process.execArgv.length === 0 ? 'no node flags' : `node flags: ${process.execArgv.join(' ')}`;
  return `node ${process.version}, ${cpus.length} x ${cpus[0]?.model ?? '?'}, ${flags}`;
}

/** The 1, 5 and 15 minute load averages: a busy machine makes every figure lower. */
export function loadAverage(): string {
  return os.loadavg().map((v) => v.toFixed(2)).join(', ');
}

/** The open-files limit as a child sees it: Node raises its soft limit to the hard one at start. */
function fileLimit(): number {
  try {
    const out = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    return out === 'unlimited' ? Infinity : Number(out);
  } catch {
    return NaN;
  }
}

/** How many idle connections the open-files limit allows, and why. */
export interface IdleFit {
  /** `asked`, or fewer when the limit is too low. */
  count: number;
  /** The open-files limit (NaN when unknown: then `count` is `asked`). */
  limit: number;
  /** The files `asked` connections need. */
  need: number;
}

/**
 * How many idle connections fit in a process that holds two sockets per connection (its two sides,
 * or a client and the echo server's end) and `reserve` files of its own.
 */
export function idleFit(asked: number, reserve: number): IdleFit {
  const limit = fileLimit();
  const need = asked * 2 + reserve;
  const count = limit < need ? Math.max(0, Math.floor((limit - reserve) / 2)) : asked;
  return { count, limit, need };
}
