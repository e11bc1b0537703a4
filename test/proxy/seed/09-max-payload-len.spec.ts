/**
 * Port of the api7 fork's t/09-max-payload-len.t (seed-behaviour.md section 3, "not on main"): the
 * seed had a hidden 65535-byte ceiling per frame; ours has none beyond the documented limits
 * (client 1 MiB, upstream 16 MiB by default, both adjustable).
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { SeedFixture } from './helpers.js';

describe('seed api7 t/09-max-payload-len', () => {
  let fx: SeedFixture;
  beforeEach(() => {
    fx = new SeedFixture();
  });
  afterEach(() => fx.dispose());

  it('09a: a 65536-byte client text frame round trips with the default limits (the seed closed the connection)', async () => {
    const upstream = await fx.echoUpstream();
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo` });
    const client = await fx.client(`${proxy.url}/proxy`);
    const payload = 'a'.repeat(65535) + 'z';
    client.ws.send(payload);
    const echoed = await client.events.next();
    expect(echoed.type).to.equal('text');
    expect(echoed.payload).to.equal(payload);
    const u = await upstream.connections.next();
    expect(u.messages[0]!.length).to.equal(65536);
  });

  it('09b: a 100000-byte frame round trips (binary, exact bytes)', async () => {
    const upstream = await fx.echoUpstream();
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo` });
    const client = await fx.client(`${proxy.url}/proxy`);
    const payload = randomBytes(100000);
    client.ws.send(payload);
    expect((await client.events.next()).type).to.equal('binary');
    expect(client.messages[0]!.equals(payload)).to.equal(true);
  });

  it('09c: no hidden ceiling: a 100 MB message round trips when the limits allow it, aggregated from fragments', async function () {
    this.timeout(20000);
    const size = 100 * 1000 * 1000;
    const upstream = await fx.echoUpstream();
    const proxy = await fx.proxy({
      upstream: `${upstream.url}/echo`,
      proxyOptions: { clientMaxFrameSize: size, upstreamMaxFrameSize: size, aggregateFragments: true },
    });
    const client = await fx.client(`${proxy.url}/proxy`);
    const payload = randomBytes(size);
    // Two fragments from the client (aggregated by the proxy into one frame), one frame back.
    client.ws.send(payload.subarray(0, size / 2), { fin: false });
    client.ws.send(payload.subarray(size / 2), { fin: true });
    expect((await client.events.next()).type).to.equal('binary');
    expect(client.messages[0]!.length).to.equal(size);
    expect(client.messages[0]!.equals(payload)).to.equal(true);
    client.ws.close(1000);
    const { summary, error } = await proxy.nextResult();
    expect(error).to.equal(undefined);
    expect(summary?.client.bytes).to.equal(size);
    expect(summary?.upstream.bytes).to.equal(size);
  });
});
