import { expect } from 'chai';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, pongFrame, textFrame } from '../../src/frame.js';
import { type RecordedFrame, type RecordedSide, parseRecording, recordFrame } from '../../src/record/format.js';
import { toHar } from '../../src/record/har.js';
import { RecordingRing } from '../../src/record/ring.js';
import { record } from '../../src/transforms/record.js';
import { echo } from '../helpers/proxy-harness.js';
import { until } from '../helpers/proxy-peers.js';
import { releaseAll, wsRig } from '../proxy/rig.js';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

function rec(frame: Frame, from: RecordedSide, time: number, connection = 'c1', binary = false): RecordedFrame {
  return recordFrame(frame, { time, connection, from, binary });
}

describe('toHar()', () => {
  afterEach(releaseAll);

  it('makes a HAR 1.2 log with one websocket entry per connection, in order of first frame', () => {
    const frames = [rec(textFrame('b'), 'client', T0 + 5, 'c2'), rec(textFrame('a'), 'client', T0, 'c1'), rec(textFrame('z'), 'upstream', T0 + 20, 'c1')];
    const har = toHar(frames);
    expect(har.log.version).to.equal('1.2');
    expect(har.log.creator.name).to.equal('ws-frame-proxy');
    expect(har.log.creator.version).to.be.a('string').and.not.equal('');
    expect(har.log.entries.map((e) => e.connection)).to.deep.equal(['c1', 'c2']);
    const [entry] = har.log.entries;
    expect(entry).to.include({ _resourceType: 'websocket', startedDateTime: new Date(T0).toISOString(), time: 20 });
    expect(entry!.request).to.include({ method: 'GET', url: 'ws://ws-frame-proxy.invalid/c1', httpVersion: 'HTTP/1.1' });
    expect(entry!.response).to.include({ status: 101, statusText: 'Switching Protocols' });
    for (const key of ['cookies', 'headers', 'queryString']) expect(entry!.request).to.have.property(key).that.is.an('array');
    expect(entry!.response.content).to.have.property('size', 0);
    expect(entry!.timings).to.include({ send: 0, wait: 0, receive: 0 });
    expect(entry).to.have.property('cache').that.deep.equals({});
  });

  it("lists Chrome's _webSocketMessages: send from the client, receive from the upstream, epoch seconds, opcode, text or base64", () => {
    const frames = [
      rec(textFrame('hi'), 'client', T0),
      rec(binaryFrame(Buffer.from([0, 1, 255])), 'upstream', T0 + 1.5),
      rec(pingFrame('p'), 'upstream', T0 + 2),
      rec(pongFrame('p'), 'client', T0 + 3),
      rec(closeFrame(1000, 'done'), 'client', T0 + 4),
    ];
    const [entry] = toHar({ header: { format: 'ws-frame-proxy-recording', version: 1, created: '' }, frames }).log.entries;
    expect(entry!._webSocketMessages).to.deep.equal([
      { type: 'send', time: T0 / 1000, opcode: 1, data: 'hi' },
      { type: 'receive', time: (T0 + 1.5) / 1000, opcode: 2, data: 'AAH/' },
      { type: 'receive', time: (T0 + 2) / 1000, opcode: 9, data: 'p' },
      { type: 'send', time: (T0 + 3) / 1000, opcode: 10, data: 'p' },
      { type: 'send', time: (T0 + 4) / 1000, opcode: 8, data: 'done' },
    ]);
    expect(toHar(frames, { control: false }).log.entries[0]!._webSocketMessages.map((m) => m.opcode)).to.deep.equal([1, 2]);
  });

  it('joins fragments into one message (a character split across fragments included), or lists frames with joinFragments: false', () => {
    const euro = Buffer.from('€');
    const frames = [
      rec(textFrame(Buffer.concat([Buffer.from('a'), euro.subarray(0, 1)]), false), 'client', T0),
      rec(pingFrame(), 'client', T0 + 1),
      rec(continuationFrame(euro.subarray(1)), 'client', T0 + 2),
      rec(binaryFrame(Buffer.from([1]), false), 'upstream', T0 + 3),
      rec(continuationFrame(Buffer.from([2])), 'upstream', T0 + 4, 'c1', true),
    ];
    const joined = toHar(frames).log.entries[0]!._webSocketMessages;
    expect(joined.map((m) => [m.opcode, m.data, m.time * 1000])).to.deep.equal([[9, '', T0 + 1], [1, 'a€', T0 + 2], [2, 'AQI=', T0 + 4]]);
    const split = toHar(frames, { joinFragments: false }).log.entries[0]!._webSocketMessages;
    expect(split.map((m) => m.opcode)).to.deep.equal([1, 9, 0, 2, 0]);
  });

  it('takes a url option, a ring, or several parsed recordings; refuses anything else', () => {
    const ring = new RecordingRing();
    ring.push(rec(textFrame('x'), 'client', T0, 'r1'));
    expect(toHar(ring, { url: 'wss://example.test/feed' }).log.entries[0]!.request.url).to.equal('wss://example.test/feed');
    const parsed = parseRecording(ring.toJsonl());
    const other = { ...parsed, frames: [rec(textFrame('y'), 'client', T0 + 1, 'r2')] };
    expect(toHar([parsed, other], { url: (id) => `ws://h/${id}` }).log.entries.map((e) => e.request.url)).to.deep.equal(['ws://h/r1', 'ws://h/r2']);
    expect(() => toHar(42 as never)).to.throw(TypeError, 'recording must be');
    expect(() => toHar(ring, { url: 3 as never })).to.throw(TypeError, 'options.url must be a string or a function');
    expect(() => toHar(ring, { control: 'no' as never })).to.throw(TypeError, 'options.control must be a boolean');
  });

  it('exports a connection recorded through a real proxy, as JSON a HAR reader parses', async () => {
    const ring = new RecordingRing();
    const rig = await wsRig(echo, { transforms: { client: () => [record(ring)], upstream: () => [record(ring)] } });
    const client = await rig.client();
    client.ws.send('{"op":"hi"}');
    client.ws.send(Buffer.from([7, 7]));
    await client.waitMessages(2);
    client.ws.close(1000, 'bye');
    await client.closed;
    await until(() => ring.toArray().filter((r) => r.type === 'close').length === 2);
    const har = JSON.parse(JSON.stringify(toHar(ring))) as ReturnType<typeof toHar>;
    expect(har.log.entries).to.have.length(1);
    const messages = har.log.entries[0]!._webSocketMessages;
    // Each direction is in order; the two interleave by time.
    expect(messages.map((m) => `${m.type}:${m.opcode}:${m.data}`)).to.have.members([
      'send:1:{"op":"hi"}', 'receive:1:{"op":"hi"}', 'send:2:Bwc=', 'receive:2:Bwc=', 'send:8:bye', 'receive:8:bye',
    ]);
    expect(messages.filter((m) => m.type === 'send').map((m) => m.opcode)).to.deep.equal([1, 2, 8]);
    expect(messages.map((m) => m.time)).to.deep.equal([...messages.map((m) => m.time)].sort((a, b) => a - b));
    expect(messages).to.have.length(6);
  });
});
