import { expect } from 'chai';
import { ZlibLimiter, sharedZlibLimiter } from '../../src/protocol/zlib-limiter.js';

/** A job that resolves (or rejects) when told to, recording when it started. */
function gate(started: number[], id: number) {
  let open!: () => void;
  let fail!: (err: Error) => void;
  const done = new Promise<number>((resolve, reject) => {
    open = () => resolve(id);
    fail = reject;
  });
  return { job: () => { started.push(id); return done; }, open: () => open(), fail: (err: Error) => fail(err) };
}

async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

describe('protocol/zlib-limiter', () => {
  it('runs at most `concurrency` jobs, the others in FIFO order as slots free', async () => {
    const limiter = new ZlibLimiter(2);
    const started: number[] = [];
    const gates = [0, 1, 2, 3].map((id) => gate(started, id));
    const results = gates.map((g) => limiter.run(g.job));
    await turns();
    expect(started).to.deep.equal([0, 1]);
    expect([limiter.active, limiter.queued]).to.deep.equal([2, 2]);
    gates[1]!.open();
    await turns();
    expect(started).to.deep.equal([0, 1, 2]);
    expect([limiter.active, limiter.queued]).to.deep.equal([2, 1]);
    gates[0]!.fail(new Error('zlib'));
    await turns();
    expect(started).to.deep.equal([0, 1, 2, 3]);
    gates[2]!.open();
    gates[3]!.open();
    const settled = await Promise.allSettled(results);
    expect(settled.map((r) => r.status)).to.deep.equal(['rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect([limiter.active, limiter.queued]).to.deep.equal([0, 0]);
  });

  it('shares one limiter per concurrency', () => {
    expect(sharedZlibLimiter(4)).to.equal(sharedZlibLimiter(4));
    expect(sharedZlibLimiter(4)).to.not.equal(sharedZlibLimiter(5));
  });

  it('refuses a concurrency that is not an integer >= 1', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => new ZlibLimiter(bad)).to.throw(TypeError, 'concurrencyLimit must be an integer >= 1');
    }
  });
});
