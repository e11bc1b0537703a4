/**
 * The viewer of the inspector benchmark's row (f): one real page on the inspector, or one
 * Server-Sent Events client reading `/api/events` with no browser on the machine: either without a
 * subscription (`sse`: every connection's rows, the proxy's worst case for one viewer, and the
 * viewer when there is no browser), or subscribed as the page is (`sse-one`: the rows of the first
 * live connection, `?connection=<id>`: what an open page costs the proxy, the browser's own work
 * apart).
 *
 * - Chromium: Debian's (`/usr/bin/chromium`, or `CHROMIUM_PATH`), driven by playwright-core with the
 *   flags of test/inspector/page.spec.ts. Each page is opened on connections that exist, selects
 *   the first live one (the page's default is the oldest kept, maybe closed by an earlier run) and
 *   keeps Follow on, so that it draws the newest rows during the measurement.
 * - CPU of the viewer: for Chromium, user + system time of this process's descendants that are not
 *   `node` (the browser and its renderers), from /proc (Linux only, else NaN); for the SSE client,
 *   this process's own.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type CDPSession, type Page, chromium } from 'playwright-core';
import { HOST } from './common.js';
import { descendantsCpuMicros } from './inspector-proc.js';

/** Which viewer: a real page, or the event stream alone (every connection's rows, or one's as the page). */
export type ViewerKind = 'chromium' | 'sse' | 'sse-one';

/**
 * Chromium raises some of its threads to nice -8 when it may (as root here); on a desktop, where it
 * runs as a user without CAP_SYS_NICE, it cannot. `as-launched` leaves it be; `normal` starts it
 * without CAP_SYS_NICE (`setpriv`), so that all its threads stay at the proxy's priority.
 */
export type PagePriority = 'as-launched' | 'normal';

/** What a page showed by the end of a run. */
export interface PageReport {
  /**
   * One line, e.g. `page live, Follow on, 1000 rows, newest seq 80012; the page's main thread per
   * second open: tasks 22.0 ms (...)` or `SSE: 54.1 MB read`.
   */
  summary: string;
  /** Errors thrown in the page. */
  errors: string[];
}

/** One open page (or SSE client). */
export interface OpenPage {
  /** CPU time of the viewer so far, µs (NaN when it cannot be read). */
  cpuMicros(): number;
  /** What it shows now, then closes it. */
  close(): Promise<PageReport>;
}

/** Opens pages on an inspector, one at a time. */
export interface Viewer {
  kind: ViewerKind;
  /** What it is, for the output. */
  note: string;
  /** Opens a page on the inspector at `port`, ready once its live channel is open. */
  open(port: number): Promise<OpenPage>;
  /** Closes the browser, if any. */
  close(): Promise<void>;
}

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
/** Bound on one of playwright's waits. */
const WAIT_MS = 15_000;

/**
 * The viewer asked for: `chromium` (fails without one), `sse`, `sse-one`, or `auto` (Chromium when
 * there is one, else the SSE client, saying so in its note).
 */
export async function startViewer(want: 'auto' | ViewerKind, priority: PagePriority = 'as-launched', filter = ''): Promise<Viewer> {
  if (want === 'sse') return sseViewer('--page sse');
  if (want === 'sse-one') return sseOneViewer();
  if (!existsSync(CHROMIUM)) {
    if (want === 'chromium') throw new Error(`no Chromium at ${CHROMIUM} (install Debian's chromium or set CHROMIUM_PATH)`);
    return sseViewer(`no Chromium at ${CHROMIUM}`);
  }
  const wrapper = priority === 'normal' ? withoutSysNice(CHROMIUM) : undefined;
  const browser = await chromium.launch({
    executablePath: wrapper?.file ?? CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  return {
    kind: 'chromium',
    note: `one headless Chromium page (${CHROMIUM}, ${browser.version()}${wrapper === undefined ? '' : ', started without CAP_SYS_NICE'}), `
      + `first live connection selected, Follow on${filter === '' ? '' : `, regex filter ${JSON.stringify(filter)}`}`,
    open: (port) => openChromiumPage(browser, port, filter),
    async close() {
      await browser.close();
      wrapper?.remove();
    },
  };
}

/** A script that runs `executable` without CAP_SYS_NICE (so it cannot raise its threads' priority). */
function withoutSysNice(executable: string): { file: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ws-frame-proxy-bench-'));
  const file = path.join(dir, 'chromium');
  writeFileSync(file, `#!/bin/sh\nexec setpriv --bounding-set=-sys_nice --inh-caps=-sys_nice ${JSON.stringify(executable)} "$@"\n`);
  chmodSync(file, 0o755);
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

async function openChromiumPage(browser: Browser, port: number, filter: string): Promise<OpenPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(WAIT_MS);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`http://${HOST}:${port}/`);
  await page.locator('#status.live').waitFor();
  await page.locator('#connections li[data-id]:not(.closed)').first().click();
  await page.locator('#connections li[aria-selected="true"]:not(.closed)').waitFor();
  if (!(await page.locator('#follow').isChecked())) await page.locator('#follow').check();
  // A filter that matches nothing tells the cost of receiving rows from the cost of drawing them.
  if (filter !== '') await page.locator('#filter-text').fill(filter);
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  const metricsBefore = await mainThreadMetrics(cdp);
  const openedAt = performance.now();
  return {
    cpuMicros: browserCpuMicros,
    async close() {
      const seconds = (performance.now() - openedAt) / 1000;
      const after = await mainThreadMetrics(cdp);
      const perSecond = (name: string): string => `${(((after[name] ?? 0) - (metricsBefore[name] ?? 0)) * 1000 / seconds).toFixed(1)} ms`;
      const summary = `${await describePage(page)}; the page's main thread per second open: tasks ${perSecond('TaskDuration')} `
        + `(script ${perSecond('ScriptDuration')}, layout ${perSecond('LayoutDuration')}, style ${perSecond('RecalcStyleDuration')})`;
      await context.close();
      return { summary, errors };
    },
  };
}

/**
 * Chromium's counters of the page's main thread (`Performance.getMetrics`): seconds spent in tasks,
 * script, layout and style so far. The rest of the browser's CPU (its other threads and processes:
 * raster, compositor, the network service, IPC) is what the /proc figures add.
 */
async function mainThreadMetrics(cdp: CDPSession): Promise<Record<string, number>> {
  const { metrics } = await cdp.send('Performance.getMetrics');
  return Object.fromEntries(metrics.map((m) => [m.name, m.value]));
}

/** The page's state as one line: live or not, Follow, the row count, the newest row drawn. */
async function describePage(page: Page): Promise<string> {
  // A string, not a function: the project compiles without the DOM's types.
  return page.evaluate<string>(`(() => {
    const seqs = [...document.querySelectorAll('#messages [data-seq]')].map((el) => Number(el.dataset.seq));
    const live = document.querySelector('#status')?.classList.contains('live') ? 'live' : 'not live';
    const follow = document.querySelector('#follow')?.checked ? 'Follow on' : 'Follow off';
    const count = document.querySelector('#row-count')?.textContent || '0 rows';
    return 'page ' + live + ', ' + follow + ', ' + count + ', newest row drawn: seq ' + (seqs.length ? Math.max(...seqs) : '-');
  })()`);
}

function sseViewer(why: string): Viewer {
  return {
    kind: 'sse',
    note: `${why}: one SSE client reading /api/events instead of a page (every connection's rows, where the page takes one connection's; no browser work on the machine)`,
    open: openSse,
    close: async () => {},
  };
}

/** The SSE client subscribed as the page is: to the first live connection. */
function sseOneViewer(): Viewer {
  return {
    kind: 'sse-one',
    note: '--page sse-one: one SSE client reading /api/events?connection=<the first live one>, as the page subscribes (what an open page costs the proxy; no browser work on the machine)',
    open: async (port) => openSse(port, `?connection=${encodeURIComponent(await firstLiveConnection(port))}`),
    close: async () => {},
  };
}

/** The id of the first live connection, from `GET /api/connections`. */
async function firstLiveConnection(port: number): Promise<string> {
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get({ host: HOST, port, path: '/api/connections', agent: false }, resolve).once('error', reject);
  });
  let body = '';
  res.setEncoding('utf8');
  for await (const chunk of res) body += chunk as string;
  const live = (JSON.parse(body) as { id: string; closed: number | null }[]).find((c) => c.closed === null);
  if (live === undefined) throw new Error('/api/connections lists no live connection');
  return live.id;
}

async function openSse(port: number, query = ''): Promise<OpenPage> {
  let bytes = 0;
  const errors: string[] = [];
  const req = http.get({ host: HOST, port, path: `/api/events${query}`, agent: false });
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  if (res.statusCode !== 200) throw new Error(`/api/events answered ${res.statusCode}`);
  res.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  res.on('error', (err) => errors.push(err.message));
  // Ready once `hello` came: the page is then on the channel.
  await new Promise<void>((resolve) => {
    const check = (): void => {
      if (bytes > 0) {
        res.off('data', check);
        resolve();
      }
    };
    res.on('data', check);
  });
  return {
    cpuMicros: () => {
      const cpu = process.cpuUsage();
      return cpu.user + cpu.system;
    },
    async close() {
      const ended = res.complete || res.destroyed;
      const seen = [...errors];
      // Ours from here: destroying the request makes the response report 'aborted'.
      res.removeAllListeners('error');
      res.on('error', () => {});
      req.destroy();
      return { summary: `SSE client: ${(bytes / 1e6).toFixed(1)} MB read${ended ? ', stream ended early (dropped?)' : ''}`, errors: seen };
    },
  };
}

/** User + system µs of the browser's processes (this process's descendants that are not `node`). */
function browserCpuMicros(): number {
  return descendantsCpuMicros((comm) => comm !== 'node');
}
