/**
 * CPU time of this process's descendants, from /proc (Linux only): the inspector benchmark reads
 * the browser's processes (the browser, its zygotes, renderers and utility processes) and the echo
 * upstream, which report nothing themselves.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface Stat {
  ppid: number;
  comm: string;
  /** User + system, in clock ticks. */
  ticks: number;
}

/** A process's parent, name and CPU ticks, or undefined when it is gone. */
function procStat(pid: string): Stat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The name is in parentheses and may hold spaces: the other fields start after the last one.
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    // After the name: state, ppid, ... utime is the 12th field from there, stime the 13th.
    return { ppid: Number(fields[1]), comm: stat.slice(stat.indexOf('(') + 1, close), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

/** A process's command line, space-separated ('' when it is gone). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/**
 * User + system µs, so far, of this process's descendants that `select` picks (by name and pid);
 * NaN without /proc. Processes that ended are not counted: read it while they live.
 */
export function descendantsCpuMicros(select: (comm: string, pid: number) => boolean): number {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return NaN;
  }
  const stats = new Map<number, Stat>();
  for (const pid of pids) {
    const s = procStat(pid);
    if (s !== undefined) stats.set(Number(pid), s);
  }
  const isDescendant = (pid: number): boolean => {
    for (let p = stats.get(pid)?.ppid; p !== undefined && p > 1; p = stats.get(p)?.ppid) {
      if (p === process.pid) return true;
    }
    return false;
  };
  let ticks = 0;
  for (const [pid, s] of stats) {
    if (isDescendant(pid) && select(s.comm, pid)) ticks += s.ticks;
  }
  return (ticks / clockTicks()) * 1e6;
}
