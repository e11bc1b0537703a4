import { createHash } from 'node:crypto';
import { expect } from 'chai';
import type { WebSocket } from 'ws';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, textFrame } from '../../src/index.js';
import type { ProxyOutcome } from '../helpers/proxy-harness.js';
import { type RawPeer, recordingLogger, text, until } from '../helpers/proxy-peers.js';
import { rawRig, releaseAll, turns, wsRig } from './rig.js';

/** Records what a `ws` upstream connection receives and how it closes. */
function watch(ws: WebSocket): { messages: string[]; closed: Promise<[number, string]> } {
  const messages: string[] = [];
  ws.on('message', (data) => messages.push(data.toString()));
  const closed = new Promise<[number, string]>((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
  return { messages, closed };
}

/** Expects the summary of a limit hit by `offender`: 1009 to it, 1001 to its peer, execute() resolved. */
async function expectLimitSummary(outcome: ProxyOutcome, offender: 'client' | 'upstream'): Promise<void> {
  const { summary, error } = await outcome.done;
  expect(error).to.equal(undefined);
  const peer = offender === 'client' ? 'upstream' : 'client';
  expect(summary?.closedBy).to.equal('proxy');
  expect(summary?.[offender].closeSent).to.deep.equal({ code: 1009, reason: 'Payload Too Large' });
  expect(summary?.[peer].closeSent).to.deep.equal({ code: 1001, reason: '' });
}

/** n fragments of `piece` as one message of `type`, the last with FIN. */
function fragments(n: number, piece: string, type: 'text' | 'binary' = 'text'): Frame[] {
  const out: Frame[] = [];
  for (let i = 0; i < n; i++) {
    const fin = i === n - 1;
    out.push(i === 0 ? (type === 'text' ? textFrame(piece, fin) : binaryFrame(piece, fin)) : continuationFrame(piece, fin));
  }
  return out;
}

/**
 * The offender of a limit is sent its 1009 only after its peer's close reply (what the peer sent
 * before still reaches it): a few turns after the peer got its 1001, it has no close yet.
 */
async function noCloseYet(offender: RawPeer): Promise<void> {
  await turns();
  expect(offender.frames.filter((f) => f.type === 'close'), 'the offender is sent its close after its peer replied').to.deep.equal([]);
}

/** Data frames only, as text views. */
function dataOf(peer: RawPeer): ReturnType<typeof text>[] {
  return peer.frames.filter((f) => f.type === 'text' || f.type === 'binary' || f.type === 'continuation').map(text);
}

describe('WebSocketProxy limits', () => {
  afterEach(releaseAll);

  it('clientMaxFrameSize: exactly the limit passes, one byte more -> 1009 to the client, 1001 to the upstream', async () => {
    const logger = recordingLogger();
    const rig = await wsRig(() => undefined, { clientMaxFrameSize: 10, logger });
    const client = await rig.client();
    const outcome = await rig.proxy.nextOutcome();
    const upstream = watch(rig.upstreamSockets[0]!);
    client.ws.send('0123456789');
    await until(() => upstream.messages.length === 1);
    client.ws.send('this is way too long');
    expect(await client.closed).to.deep.equal({ code: 1009, reason: 'Payload Too Large' });
    expect(await upstream.closed).to.deep.equal([1001, '']);
    expect(upstream.messages).to.deep.equal(['0123456789']);
    await expectLimitSummary(outcome, 'client');
    expect(logger.at('info')).to.include('client frame payload exceeds maxFrameSize: 20 > 10, closing');
    expect(logger.at('error')).to.deep.equal([]);
  });

  it('upstreamMaxFrameSize: exactly the limit passes, one byte more -> 1009 to the upstream, 1001 to the client', async () => {
    const rig = await wsRig((ws) => ws.on('message', (data) => ws.send(data.toString() === 'go' ? '0123456789' : 'x'.repeat(11))),
      { upstreamMaxFrameSize: 10 });
    const client = await rig.client();
    const outcome = await rig.proxy.nextOutcome();
    const upstream = watch(rig.upstreamSockets[0]!);
    client.ws.send('go');
    await client.waitMessages(1);
    client.ws.send('too long');
    expect(await client.closed).to.deep.equal({ code: 1001, reason: '' });
    expect(await upstream.closed).to.deep.equal([1009, 'Payload Too Large']);
    expect(client.messages).to.deep.equal(['0123456789']);
    await expectLimitSummary(outcome, 'upstream');
  });

  it('the default limits: a 1 MiB client message passes, 1 MiB + 1 gets 1009', async () => {
    const rig = await wsRig((ws) => ws.on('message', (data) => ws.send(String((data as Buffer).length))));
    const client = await rig.client();
    const outcome = await rig.proxy.nextOutcome();
    client.ws.send(Buffer.alloc(1024 * 1024));
    await client.waitMessages(1);
    expect(client.messages[0]).to.equal('1048576');
    client.ws.send(Buffer.alloc(1024 * 1024 + 1));
    expect(await client.closed).to.deep.equal({ code: 1009, reason: 'Payload Too Large' });
    expect(client.messages).to.have.length(1);
    await expectLimitSummary(outcome, 'client');
  });

  it('with aggregation clientMaxFrameSize bounds the whole message; control frames are not counted', async () => {
    const rig = await rawRig({ aggregateFragments: true, clientMaxFrameSize: 10 });
    const client = await rig.rawClient();
    const upstream = await rig.upstream();
    const outcome = await rig.proxy.nextOutcome();
    // 5 x "11" = 10 bytes: passes, with 9-byte pings between the fragments (not added to the message).
    const ok = fragments(5, '11');
    for (const frame of ok) client.send(pingFrame('heartbeat'), frame);
    await until(() => upstream.frames.length === 6);
    expect(upstream.frames.map(text)).to.deep.equal([
      ...Array.from({ length: 5 }, () => ({ type: 'ping', fin: true, data: 'heartbeat' })),
      { type: 'text', fin: true, data: '1111111111' },
    ]);
    // 5 x "11" then "1" (11 bytes): the sixth fragment trips it; pings before it still pass.
    const tooMany = [...fragments(5, '11').map((f) => ({ ...f, fin: false })), continuationFrame('1', true)];
    for (const frame of tooMany) client.send(pingFrame('p'), frame);
    const upstreamClose = await upstream.waitClose();
    expect(text(upstreamClose)).to.deep.equal({ type: 'close', fin: true, data: '', code: 1001 });
    await noCloseYet(client);
    upstream.send(closeFrame(1001));
    const close = await client.waitClose();
    expect(text(close)).to.deep.equal({ type: 'close', fin: true, data: 'Payload Too Large', code: 1009 });
    // Nothing of the offending message reached the upstream.
    expect(dataOf(upstream)).to.deep.equal([{ type: 'text', fin: true, data: '1111111111' }]);
    client.send(closeFrame(1009));
    upstream.socket.end();
    await expectLimitSummary(outcome, 'client');
  });

  it('with aggregation upstreamMaxFrameSize bounds the whole message', async () => {
    const rig = await rawRig({ aggregateFragments: true, upstreamMaxFrameSize: 10 });
    const client = await rig.rawClient();
    const upstream = await rig.upstream();
    const outcome = await rig.proxy.nextOutcome();
    upstream.send(...fragments(2, '12345', 'binary'));
    await client.waitFrames(1);
    upstream.send(...fragments(5, '11').map((f) => ({ ...f, fin: false })), continuationFrame('1', false));
    expect(text(await client.waitClose())).to.deep.equal({ type: 'close', fin: true, data: '', code: 1001 });
    await noCloseYet(upstream);
    client.send(closeFrame(1001));
    expect(text(await upstream.waitClose())).to.deep.equal({ type: 'close', fin: true, data: 'Payload Too Large', code: 1009 });
    expect(dataOf(client)).to.deep.equal([{ type: 'binary', fin: true, data: '1234512345' }]);
    upstream.send(closeFrame(1009));
    upstream.socket.end();
    await expectLimitSummary(outcome, 'upstream');
  });

  for (const aggregateFragments of [true, false]) {
    it(`clientMaxFragments (${aggregateFragments ? 'with' : 'without'} aggregation): exactly the limit passes, one more -> 1009 / 1001`, async () => {
      const rig = await rawRig({ aggregateFragments, clientMaxFragments: 3 });
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      // Empty fragments count too; interleaved pings do not.
      client.send(textFrame('', false), pingFrame('1'), continuationFrame('a', false), pingFrame('2'), continuationFrame('', true));
      await until(() => dataOf(upstream).length === (aggregateFragments ? 1 : 3));
      client.send(...fragments(4, 'b'));
      expect(text(await upstream.waitClose())).to.deep.equal({ type: 'close', fin: true, data: '', code: 1001 });
      await noCloseYet(client);
      upstream.send(closeFrame(1001));
      const close = await client.waitClose();
      expect(text(close)).to.deep.equal({ type: 'close', fin: true, data: 'Payload Too Large', code: 1009 });
      const data = dataOf(upstream);
      if (aggregateFragments) {
        expect(data).to.deep.equal([{ type: 'text', fin: true, data: 'a' }]);
      } else {
        // Each fragment passes as it comes; the fourth of the second message is not forwarded.
        expect(data).to.deep.equal([
          { type: 'text', fin: false, data: '' }, { type: 'continuation', fin: false, data: 'a' }, { type: 'continuation', fin: true, data: '' },
          { type: 'text', fin: false, data: 'b' }, { type: 'continuation', fin: false, data: 'b' }, { type: 'continuation', fin: false, data: 'b' },
        ]);
      }
      client.send(closeFrame(1009));
      upstream.socket.end();
      await expectLimitSummary(outcome, 'client');
    });
  }

  it('upstreamMaxFragments: exactly the limit passes, one more -> 1009 to the upstream, 1001 to the client', async () => {
    const rig = await rawRig({ aggregateFragments: true, upstreamMaxFragments: 5 });
    const client = await rig.rawClient();
    const upstream = await rig.upstream();
    const outcome = await rig.proxy.nextOutcome();
    upstream.send(...fragments(5, 'x'));
    await client.waitFrames(1);
    upstream.send(...fragments(6, 'y'));
    expect(text(await client.waitClose())).to.deep.equal({ type: 'close', fin: true, data: '', code: 1001 });
    await noCloseYet(upstream);
    client.send(closeFrame(1001));
    expect(text(await upstream.waitClose())).to.deep.equal({ type: 'close', fin: true, data: 'Payload Too Large', code: 1009 });
    expect(dataOf(client)).to.deep.equal([{ type: 'text', fin: true, data: 'xxxxx' }]);
    upstream.send(closeFrame(1009));
    upstream.socket.end();
    await expectLimitSummary(outcome, 'upstream');
  });

  // Regression: the parser once applied maxFrameSize (and a maxBufferedBytes derived from it) to
  // control frames, so with *MaxFrameSize below 125 a longer ping got 1009 (seed case 33 uses 2).
  it('control frames are never counted: pings larger than the limits pass both ways', async () => {
    const rig = await wsRig(() => undefined, { clientMaxFrameSize: 2, upstreamMaxFrameSize: 2 });
    const client = await rig.client();
    const outcome = await rig.proxy.nextOutcome();
    const upstreamWs = rig.upstreamSockets[0]!;
    const upstreamPings: string[] = [];
    upstreamWs.on('ping', (data) => upstreamPings.push(data.toString()));
    client.ws.ping('test-1');
    await until(() => client.events.includes('pong:test-1'));
    upstreamWs.ping('from upstream');
    await until(() => client.events.includes('ping:from upstream'));
    client.ws.close(1002, 'goodbye');
    expect(await client.closed).to.deep.equal({ code: 1002, reason: 'goodbye' });
    expect(upstreamPings).to.deep.equal(['test-1']);
    const { summary } = await outcome.done;
    expect(summary?.closedBy).to.equal('client');
    expect(summary?.upstream.closeSent).to.deep.equal({ code: 1002, reason: 'goodbye' });
  });

  it('no hidden ceiling: a 100 MB message passes upstream -> client when upstreamMaxFrameSize allows it', async function () {
    this.timeout(20000);
    const big = Buffer.alloc(100 * 1000 * 1000);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
    const digest = createHash('sha256').update(big).digest('hex');
    const rig = await wsRig((ws) => ws.on('message', () => ws.send(big)), { upstreamMaxFrameSize: 128 * 1024 * 1024 });
    const client = await rig.client();
    client.ws.send('send it');
    await client.waitMessages(1);
    const got = client.messages[0] as Buffer;
    expect(got.length).to.equal(big.length);
    expect(createHash('sha256').update(got).digest('hex')).to.equal(digest);
    client.ws.close();
    await client.closed;
  });
});
