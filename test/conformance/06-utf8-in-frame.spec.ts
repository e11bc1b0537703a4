/**
 * Conformance 6.4.3 and 6.4.4 (after Autobahn): invalid UTF-8 inside ONE text frame fails the
 * connection as soon as the invalid bytes arrive, before the frame completes. Autobahn sends the
 * frame in three chops with pauses between them and judges `ws` NON-STRICT here, since `ws` checks
 * a frame once it is whole. These cases never send the third chop: the 1007 must come without it
 * (a proxy that waited for the whole frame would never answer, and the test would time out).
 *
 * Played through the proxy, aggregation off and on, in both directions (a raw client and a raw
 * upstream write the chops themselves). Kept apart from the shared runner, which compares each case
 * with `ws` direct: `ws` direct would wait for the end of the frame here.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { type Frame, closeFrame } from '../../src/frame.js';
import { encodeFrame } from '../../src/protocol/encode.js';
import type { RawPeer } from '../helpers/proxy-peers.js';
import { waitFor } from '../helpers/sockets.js';
import { rawRig, releaseAll, turns } from '../proxy/rig.js';

/** Autobahn's 6.4.x payload: "κόσμε", then U+110000 (F4 90 80 80, above U+10FFFF), then "edited". */
const VALID = Buffer.from('κόσμε', 'utf8');
const INVALID = Buffer.from('f4908080', 'hex');
const REST = Buffer.from('edited', 'utf8');
const PAYLOAD = Buffer.concat([VALID, INVALID, REST]);

/** The three chops of a case: the third (the rest of the frame) is never sent. */
const CASES: readonly { id: string; title: string; first: number; second: number }[] = [
  // 6.4.3: the valid text, then the whole invalid code point.
  { id: '6.4.3', title: 'the invalid code point in the second chop', first: VALID.length, second: INVALID.length },
  // 6.4.4: the valid text and F4 (a valid lead byte), then 90 alone, which makes it invalid.
  { id: '6.4.4', title: 'the one byte that makes it invalid in the second chop', first: VALID.length + 1, second: 1 },
];

/** The wire form of the whole text frame, masked when a client sends it. */
function frameBytes(masked: boolean): { bytes: Buffer; header: number } {
  const frame: Frame = { type: 'text', fin: true, rsv1: false, payload: PAYLOAD };
  const bytes = Buffer.concat(encodeFrame(frame, masked ? randomBytes(4) : undefined));
  return { bytes, header: bytes.length - PAYLOAD.length };
}

/** Writes the first two chops apart, waiting for the proxy between them. */
async function sendTwoChops(peer: RawPeer, masked: boolean, first: number, second: number): Promise<void> {
  const { bytes, header } = frameBytes(masked);
  peer.sendRaw(bytes.subarray(0, header + first));
  await turns();
  // The valid chop alone is no violation: nothing closed yet.
  expect(peer.frames.filter((f) => f.type === 'close')).to.deep.equal([]);
  peer.sendRaw(bytes.subarray(header + first, header + first + second));
}

/**
 * The first close frame the peer gets. The guard only turns a proxy that waits for the rest of the
 * frame (which never comes) into a failure rather than a run that never ends.
 */
async function closeOf(peer: RawPeer): Promise<Frame> {
  await waitFor(() => peer.frames.some((f) => f.type === 'close'), 5000);
  return peer.frames.find((f) => f.type === 'close')!;
}

/**
 * The other peer answers the close the proxy sends it, as a `ws` peer would: the proxy may wait for
 * that answer before it fails the offender (strict transparency, issue 8 section 3).
 */
async function answerClose(peer: RawPeer): Promise<void> {
  await closeOf(peer);
  peer.send(closeFrame(1000));
}

describe('conformance 6.4.3, 6.4.4: invalid UTF-8 inside one frame fails before the frame completes', function () {
  this.timeout(10_000);
  afterEach(releaseAll);

  it('6.4.3 in a 64 KiB frame relayed as it arrives (cut-through): the client gets 1007, the upstream, given part of the frame, is dropped', async () => {
    const rig = await rawRig();
    const client = await rig.rawClient();
    const upstream = await rig.upstream();
    const valid = Buffer.from('κόσμε'.repeat(4000), 'utf8');
    const payload = Buffer.concat([valid, INVALID, Buffer.alloc(65536 - valid.length - INVALID.length, 0x61)]);
    const bytes = Buffer.concat(encodeFrame({ type: 'text', fin: true, rsv1: false, payload }, randomBytes(4)));
    const header = bytes.length - payload.length;
    const handshake = upstream.socket.bytesRead;
    client.sendRaw(bytes.subarray(0, header + valid.length));
    // The valid part is relayed before the frame is complete.
    await waitFor(() => upstream.socket.bytesRead - handshake >= valid.length, 5000);
    client.sendRaw(bytes.subarray(header + valid.length, header + valid.length + INVALID.length));
    expect((await closeOf(client)).code).to.equal(1007);
    // No close frame can follow the unfinished frame the upstream was given: its connection is dropped.
    await upstream.closed;
    expect(upstream.frames).to.deep.equal([]);
  });

  for (const aggregateFragments of [false, true]) {
    const mode = aggregateFragments ? 'aggregated' : 'proxied';
    for (const c of CASES) {
      it(`${c.id} ${c.title}: the client gets 1007 (${mode})`, async () => {
        const rig = await rawRig({ aggregateFragments });
        const client = await rig.rawClient();
        const upstream = await rig.upstream();
        await sendTwoChops(client, true, c.first, c.second);
        await answerClose(upstream);
        const close = await closeOf(client);
        expect(close.code).to.equal(1007);
        // Nothing of the text reached the upstream: it never had a whole frame to forward.
        expect(upstream.frames.filter((f) => f.type !== 'close')).to.deep.equal([]);
      });

      it(`${c.id} ${c.title}: the upstream gets 1007 (${mode})`, async () => {
        const rig = await rawRig({ aggregateFragments });
        const client = await rig.rawClient();
        const upstream = await rig.upstream();
        await sendTwoChops(upstream, false, c.first, c.second);
        await answerClose(client);
        const close = await closeOf(upstream);
        expect(close.code).to.equal(1007);
        expect(client.frames.filter((f) => f.type !== 'close')).to.deep.equal([]);
      });
    }
  }
});
