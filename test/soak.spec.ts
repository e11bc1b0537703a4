/**
 * The soak's short variant (bench/soak-run.ts, the code `npm run bench:soak` runs for 10 minutes
 * with 10,000 connections): 1,000 connections through `ProxyServer` for 30 s, with seeded random
 * traffic and churn, the proxy, the clients and the `ws` echo upstream each in its own process.
 * Once every connection has closed, the proxy process's open files and JS heap must be back to
 * their baseline (tolerances: bench/soak-run.ts; here no file, and 2 MiB plus 2 % of the heap the
 * connections held, about 2.5 MiB: about 2 KiB per connection handled, or one connection in
 * fifteen kept whole, fails it), and no connection may have failed.
 *
 * The seed is in the title; `WSP_SOAK_SEED=n` replays another one. About 40 s.
 */
import { expect } from 'chai';
import { CODE_ALLOWANCE, DEFAULT_PLAN, type SoakResult, soak } from '../bench/soak-run.js';

const SEED = Number(process.env['WSP_SOAK_SEED'] ?? 1);
const CONNECTIONS = 1000;
const DURATION_MS = 30_000;
const SAMPLE_MS = 10_000;

describe(`soak: ${CONNECTIONS} connections through ProxyServer for ${DURATION_MS / 1000} s (seed ${SEED})`, function () {
  this.timeout(120_000);
  let result: SoakResult;

  before(async () => {
    result = await soak({
      connections: CONNECTIONS,
      durationMs: DURATION_MS,
      sampleMs: SAMPLE_MS,
      warmupConnections: 50,
      warmupMs: 1000,
      // Opening 200 at a time: the 1,000 connections take a few seconds of the 40 s budget.
      openConcurrency: 200,
      settleMs: 300,
      gcPauseMs: 100,
      plan: { ...DEFAULT_PLAN, seed: SEED },
    });
  });

  it('holds every connection, samples every 10 s, and churns', () => {
    expect(result.connections, result.note).to.equal(CONNECTIONS);
    expect(result.rows.length).to.be.at.least(DURATION_MS / SAMPLE_MS);
    for (const row of result.rows) {
      expect(row.connections).to.be.within(CONNECTIONS * 0.9, CONNECTIONS * 1.1);
      // Two sockets per connection in the proxy process.
      expect(row.fds).to.be.at.least(row.connections * 2);
      expect(row.heapUsed).to.be.above(0);
      // The last interval may be too short for a reading of the loop delay.
      if (Number.isFinite(row.delayP99)) expect(row.delayMax).to.be.at.least(row.delayP99);
    }
    expect(result.rows.reduce((n, r) => n + r.clients.echoed, 0)).to.be.above(CONNECTIONS);
    // 1-5 % per 10 s over 30 s: at least 1 % of 1,000, three times, less rounding.
    expect(result.churned).to.be.at.least(20);
    expect(result.readings.loaded.fds).to.be.at.least(CONNECTIONS * 2);
  });

  it('fails no connection and loses no message', () => {
    expect(result.failures).to.deep.equal({ openFailed: 0, unexpectedClose: 0, badEcho: 0, missing: 0 });
    expect(result.counts.refused, 'refused upgrades').to.equal(0);
    expect(result.counts.errors, 'server errors').to.equal(0);
    const ended = Object.values(result.counts.endings).reduce((n, x) => n + x, 0);
    // Every connection of the warm-up and of the run ended at the proxy.
    expect(ended).to.be.at.least(CONNECTIONS + result.churned);
  });

  it('gives back every open file', () => {
    const { fds } = result;
    expect(fds.open - fds.baseline, 'files held by the open connections').to.be.at.least(CONNECTIONS * 2);
    expect(fds.end, `open files after the close (baseline ${fds.baseline})`).to.be.at.most(fds.baseline + fds.allowed);
    expect(fds.pass).to.equal(true);
  });

  it('gives back the JS heap', () => {
    const { heap } = result;
    // The bound means something: the connections held far more than it while open.
    expect(heap.open - heap.baseline).to.be.above(heap.allowed * 5);
    expect(heap.allowed).to.be.below(CODE_ALLOWANCE + 2 * 2 ** 20);
    expect(heap.end - heap.baseline, `heap growth after the close, bytes (allowed ${Math.round(heap.allowed)})`).to.be.at.most(heap.allowed);
    expect(heap.pass).to.equal(true);
  });
});
