import { expect } from 'chai';
import { Counter, Gauge, Registry, register } from 'prom-client';
import { Readable, Writable, pipeline } from 'readable-stream';
import sinon from 'sinon';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, pongFrame, textFrame } from '../../src/frame.js';
import {
  DEFAULT_METRICS_PREFIX, MESSAGE_SIZE_BUCKETS, type MetricsOptions, type MetricsRegistry, MetricsStage, metrics, requirePromClient,
} from '../../src/transforms/metrics.js';
import { setStageContext } from '../../src/transforms/stage.js';
import { echo } from '../helpers/proxy-harness.js';
import { releaseAll, wsRig } from '../proxy/rig.js';

/** Pushes `frames` through `stage` in a pipeline and resolves with what came out. */
function run(stage: MetricsStage, frames: Frame[]): Promise<Frame[]> {
  const out: Frame[] = [];
  return new Promise((resolve, reject) => {
    pipeline(
      Readable.from(frames),
      stage,
      new Writable({ objectMode: true, write: (frame: Frame, _e, cb) => { out.push(frame); cb(); } }),
      (err) => (err ? reject(err) : resolve(out)),
    );
  });
}

/**
 * The samples of a registry's text output, by `name{labels}` with the labels sorted, e.g.
 * `ws_proxy_frames_total{from="client",type="text"}`.
 */
async function samples(registry: Registry): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await registry.metrics()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(match, line).to.not.equal(null);
    const labels = (match![2] ?? '').split(',').filter((l) => l !== '').sort().join(',');
    out.set(`${match![1]!}{${labels}}`, Number(match![3]));
  }
  return out;
}

/** The sample key of `name` with `labels` (sorted like {@link samples}). */
function key(name: string, labels: Record<string, string>): string {
  return `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',')}}`;
}

/** The samples of one metric name (histogram samples: _bucket, _sum, _count), as an object. */
function series(all: Map<string, number>, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of all) if (k.startsWith(name) && /^(?:_bucket|_sum|_count)?\{/.test(k.slice(name.length))) out[k.slice(name.length)] = v;
  return out;
}

const P = 'ws_proxy_';

describe('metrics()', () => {
  afterEach(releaseAll);

  it('returns a MetricsStage; the default prefix is ws_proxy_, the buckets 64 B to 16 MiB by powers of 4', () => {
    expect(metrics({ registry: new Registry() })).to.be.instanceOf(MetricsStage);
    expect(DEFAULT_METRICS_PREFIX).to.equal('ws_proxy_');
    expect(MESSAGE_SIZE_BUCKETS).to.deep.equal([64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216]);
  });

  it('validates its options at factory time', () => {
    const bad: [unknown, string][] = [
      [null, 'options must be an object'],
      [{ registry: null }, 'options.registry must be a prom-client Registry (an object with getSingleMetric() and registerMetric())'],
      [{ registry: {} }, 'options.registry must be a prom-client Registry'],
      [{ registry: { getSingleMetric: () => undefined } }, 'options.registry must be a prom-client Registry'],
      [{ registry: new Registry(), prefix: '1abc' }, "options.prefix must be a string of letters, digits, '_' and ':' that does not start with a digit"],
      [{ registry: new Registry(), prefix: 'a-b_' }, 'options.prefix must be a string'],
      [{ registry: new Registry(), prefix: 5 }, 'options.prefix must be a string'],
      [{ registry: new Registry(), highWaterMark: 0 }, 'options.highWaterMark must be an integer >= 1'],
    ];
    for (const [options, message] of bad) {
      expect(() => metrics(options as MetricsOptions), JSON.stringify(options)).to.throw(TypeError, message);
    }
    expect(() => metrics({ registry: new Registry(), prefix: '' })).to.not.throw();
    expect(() => metrics({ registry: new Registry(), prefix: 'app:ws_' })).to.not.throw();
  });

  it('registers its metrics on prom-client\'s default registry when none is given', async () => {
    const names = ['frames_total', 'bytes_total', 'message_size_bytes', 'closes_total'].map((n) => `${P}${n}`);
    for (const name of names) expect(register.getSingleMetric(name), name).to.equal(undefined);
    try {
      await run(metrics(), [textFrame('abc')]);
      for (const name of names) expect(register.getSingleMetric(name), name).to.not.equal(undefined);
      expect(await register.getSingleMetricAsString(`${P}frames_total`)).to.contain(`${P}frames_total{from="client",type="text"} 1`);
    } finally {
      for (const name of names) register.removeSingleMetric(name);
    }
  });

  it('tells to install prom-client when it cannot be loaded; other load errors pass through', () => {
    const missing = Object.assign(new Error("Cannot find module 'prom-client'"), { code: 'MODULE_NOT_FOUND' });
    let thrown: unknown;
    try {
      requirePromClient(() => {
        throw missing;
      });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).to.be.instanceOf(TypeError);
    expect((thrown as Error).message).to.equal('metrics() needs prom-client, an optional peer dependency: npm install prom-client');
    expect((thrown as Error).cause).to.equal(missing);
    const other = new Error('broken install');
    expect(() => requirePromClient(() => {
      throw other;
    })).to.throw(other);
    const fake = { Counter: class {}, Histogram: class {}, register: new Registry() };
    expect(requirePromClient(() => fake)).to.equal(fake);
    // The real one is still what the factory loads.
    expect(requirePromClient().register).to.equal(register);
  });

  it('counts frames and payload bytes by side and type, observes whole messages, counts closes by code', async () => {
    const registry = new Registry();
    const frames = [
      textFrame('hello'), // message of 5
      binaryFrame(Buffer.alloc(100)), // message of 100
      textFrame('ab', false), pingFrame('ping'), continuationFrame('cde', false), pongFrame(), continuationFrame('f'), // message of 6
      binaryFrame(Buffer.alloc(300), false), continuationFrame(Buffer.alloc(0)), // message of 300
      closeFrame(1000, 'bye'), closeFrame(4001), closeFrame(),
    ];
    const out = await run(metrics({ registry, context: { role: 'upstream' } }), frames);
    out.forEach((frame, i) => expect(frame, `frame ${i}`).to.equal(frames[i]));
    expect(out).to.have.length(frames.length);
    const all = await samples(registry);
    expect(series(all, `${P}frames_total`)).to.deep.equal({
      '{from="upstream",type="text"}': 2,
      '{from="upstream",type="binary"}': 2,
      '{from="upstream",type="continuation"}': 3,
      '{from="upstream",type="ping"}': 1,
      '{from="upstream",type="pong"}': 1,
      '{from="upstream",type="close"}': 3,
    });
    expect(series(all, `${P}bytes_total`)).to.deep.equal({
      '{from="upstream",type="text"}': 7,
      '{from="upstream",type="binary"}': 400,
      '{from="upstream",type="continuation"}': 4,
      '{from="upstream",type="ping"}': 4,
      '{from="upstream",type="pong"}': 0,
      '{from="upstream",type="close"}': 3,
    });
    expect(series(all, `${P}message_size_bytes`)).to.deep.equal({
      '_bucket{from="upstream",le="64"}': 2,
      '_bucket{from="upstream",le="256"}': 3,
      '_bucket{from="upstream",le="1024"}': 4,
      '_bucket{from="upstream",le="4096"}': 4,
      '_bucket{from="upstream",le="16384"}': 4,
      '_bucket{from="upstream",le="65536"}': 4,
      '_bucket{from="upstream",le="262144"}': 4,
      '_bucket{from="upstream",le="1048576"}': 4,
      '_bucket{from="upstream",le="4194304"}': 4,
      '_bucket{from="upstream",le="16777216"}': 4,
      '_bucket{from="upstream",le="+Inf"}': 4,
      '_sum{from="upstream"}': 411,
      '_count{from="upstream"}': 4,
    });
    expect(series(all, `${P}closes_total`)).to.deep.equal({
      '{code="1000",from="upstream"}': 1,
      '{code="4001",from="upstream"}': 1,
      '{code="none",from="upstream"}': 1,
    });
  });

  it('labels from with the context a proxy hands it (client by default)', async () => {
    const registry = new Registry();
    await run(metrics({ registry }), [textFrame('a')]);
    const stage = metrics({ registry });
    setStageContext(stage, { role: 'upstream', id: 'x', proxy: undefined });
    await run(stage, [textFrame('bb')]);
    const all = await samples(registry);
    expect(all.get(key(`${P}bytes_total`, { from: 'client', type: 'text' }))).to.equal(1);
    expect(all.get(key(`${P}bytes_total`, { from: 'upstream', type: 'text' }))).to.equal(2);
    expect(all.get(key(`${P}message_size_bytes_count`, { from: 'client' }))).to.equal(1);
    expect(all.get(key(`${P}message_size_bytes_count`, { from: 'upstream' }))).to.equal(1);
  });

  it('two stages on one registry share the metrics and add up; each scrape has every count so far', async () => {
    const registry = new Registry();
    const a = metrics({ registry });
    const b = metrics({ registry, context: { role: 'upstream' } });
    const c = metrics({ registry });
    await run(a, [textFrame('12345'), closeFrame(1000)]);
    await run(b, [textFrame('123')]);
    let all = await samples(registry);
    expect(all.get(key(`${P}frames_total`, { from: 'client', type: 'text' }))).to.equal(1);
    expect(all.get(key(`${P}frames_total`, { from: 'upstream', type: 'text' }))).to.equal(1);
    await run(c, [textFrame('1234567'), closeFrame(1000)]);
    all = await samples(registry);
    expect(all.get(key(`${P}frames_total`, { from: 'client', type: 'text' }))).to.equal(2);
    expect(all.get(key(`${P}bytes_total`, { from: 'client', type: 'text' }))).to.equal(12);
    expect(all.get(key(`${P}message_size_bytes_sum`, { from: 'client' }))).to.equal(12);
    expect(all.get(key(`${P}message_size_bytes_count`, { from: 'client' }))).to.equal(2);
    expect(all.get(key(`${P}closes_total`, { from: 'client', code: '1000' }))).to.equal(2);
    // A scrape with nothing new changes nothing; getMetricsAsJSON() sees the same counts.
    expect(await samples(registry)).to.deep.equal(all);
    const json = await registry.getMetricsAsJSON();
    const frames = json.find((m) => m.name === `${P}frames_total`) as unknown as { values: { value: number; labels: Record<string, string> }[] };
    expect(frames.values.find((v) => v.labels.from === 'client' && v.labels.type === 'text')?.value).to.equal(2);
  });

  it('hands frame and byte counts to prom-client once per series per read, not once per frame', async () => {
    const registry = new Registry();
    const stage = metrics({ registry });
    const frames = registry.getSingleMetric(`${P}frames_total`) as Counter;
    const bytes = registry.getSingleMetric(`${P}bytes_total`) as Counter;
    const incFrames = sinon.spy(frames, 'inc');
    const incBytes = sinon.spy(bytes, 'inc');
    await run(stage, Array.from({ length: 100 }, () => textFrame('abcd')));
    expect(incFrames.callCount).to.equal(0);
    const all = await samples(registry);
    expect(incFrames.args).to.deep.equal([[{ from: 'client', type: 'text' }, 100]]);
    expect(incBytes.args).to.deep.equal([[{ from: 'client', type: 'text' }, 400]]);
    expect(all.get(key(`${P}frames_total`, { from: 'client', type: 'text' }))).to.equal(100);
  });

  it('keeps registries and prefixes apart', async () => {
    const one = new Registry();
    const two = new Registry();
    await run(metrics({ registry: one }), [textFrame('a')]);
    await run(metrics({ registry: one, prefix: 'edge_' }), [textFrame('a'), textFrame('b')]);
    await run(metrics({ registry: two }), [binaryFrame('abc')]);
    const first = await samples(one);
    expect(first.get(key(`${P}frames_total`, { from: 'client', type: 'text' }))).to.equal(1);
    expect(first.get(key('edge_frames_total', { from: 'client', type: 'text' }))).to.equal(2);
    const second = await samples(two);
    expect(second.get(key(`${P}frames_total`, { from: 'client', type: 'text' }))).to.equal(undefined);
    expect(second.get(key(`${P}frames_total`, { from: 'client', type: 'binary' }))).to.equal(1);
  });

  it('refuses a registry that has a metric of one of its names of another type or labels, registering nothing', () => {
    const gauge = new Registry();
    new Gauge({ name: `${P}closes_total`, help: 'not ours', registers: [gauge] });
    expect(() => metrics({ registry: gauge })).to.throw(TypeError,
      `metrics(): the registry already has a metric named ${P}closes_total that is not a counter with labels from, code (it is a gauge with labels none)`);
    expect(gauge.getSingleMetric(`${P}frames_total`), 'nothing registered').to.equal(undefined);
    const labels = new Registry();
    new Counter({ name: `${P}frames_total`, help: 'not ours', labelNames: ['from'], registers: [labels] });
    expect(() => metrics({ registry: labels })).to.throw(TypeError,
      `metrics(): the registry already has a metric named ${P}frames_total that is not a counter with labels from, type (it is a counter with labels from)`);
  });

  it('counts in a matching metric that was already registered, keeping its own collect', async () => {
    const registry = new Registry();
    let collected = 0;
    const mine = new Counter({
      name: `${P}frames_total`, help: 'made by the application', labelNames: ['type', 'from'], registers: [registry],
      collect() {
        collected++;
      },
    });
    mine.inc({ from: 'client', type: 'text' }, 10);
    await run(metrics({ registry }), [textFrame('x')]);
    const all = await samples(registry);
    expect(all.get(key(`${P}frames_total`, { from: 'client', type: 'text' }))).to.equal(11);
    expect(collected).to.equal(1);
  });

  it('after registry.clear(), the next stage registers the metrics again', async () => {
    const registry = new Registry();
    await run(metrics({ registry }), [textFrame('x')]);
    registry.clear();
    expect(await registry.metrics()).to.equal('\n');
    await run(metrics({ registry }), [textFrame('yy')]);
    const all = await samples(registry);
    expect(all.get(key(`${P}bytes_total`, { from: 'client', type: 'text' }))).to.equal(2);
  });

  it('a registry typed structurally: prom-client\'s Registry is a MetricsRegistry', () => {
    const registry: MetricsRegistry = new Registry();
    expect(metrics({ registry })).to.be.instanceOf(MetricsStage);
  });

  it('through WebSocketProxy: one stage per direction and connection; the series of both sides add up over connections', async () => {
    const registry = new Registry();
    const rig = await wsRig(echo, () => ({
      transforms: { client: [metrics({ registry })], upstream: [metrics({ registry })] },
    }));
    for (let i = 0; i < 2; i++) {
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      client.ws.send('hello');
      client.ws.send(Buffer.alloc(1000));
      await client.waitMessages(2);
      client.ws.close(4000, 'done');
      expect(await client.closed).to.deep.equal({ code: 4000, reason: 'done' });
      await outcome.done;
    }
    const all = await samples(registry);
    for (const from of ['client', 'upstream']) {
      expect(series(all, `${P}frames_total`), from).to.include({
        [`{from="${from}",type="text"}`]: 2,
        [`{from="${from}",type="binary"}`]: 2,
        [`{from="${from}",type="close"}`]: 2,
      });
      expect(series(all, `${P}bytes_total`), from).to.include({
        [`{from="${from}",type="text"}`]: 10,
        [`{from="${from}",type="binary"}`]: 2000,
        [`{from="${from}",type="close"}`]: 8,
      });
      expect(all.get(key(`${P}message_size_bytes_count`, { from })), from).to.equal(4);
      expect(all.get(key(`${P}message_size_bytes_sum`, { from })), from).to.equal(2010);
      expect(all.get(key(`${P}message_size_bytes_bucket`, { from, le: '64' })), from).to.equal(2);
      expect(all.get(key(`${P}closes_total`, { from, code: '4000' })), from).to.equal(2);
    }
  });
});
