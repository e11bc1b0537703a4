/**
 * Conformance group 5, fragmentation (after Autobahn 5.x): fragmented text and binary messages, sent
 * in one write, frame by frame, or in 1-byte chops; control frames interleaved (RFC 6455 section 5.4:
 * they "MAY be injected in the middle of a fragmented message"); and the violations: fragmented
 * control frames, continuations with nothing to continue, a new data frame inside an open message
 * (all 1002). Through the proxy with `aggregateFragments: true` the echo server receives each message
 * as one frame, and interleaved pings ahead of it; what the client sees does not change.
 *
 * 5.15 (a whole fragmented message, then a stray continuation, in one write) holds the proxy to
 * `ws`'s outcome exactly, as in groups 3 and 4: the echo of the message, still on its way when the
 * proxy parses the stray continuation, reaches the client before its 1002.
 */
import { type CaseClient, type ConformanceCase, OP, describeEcho, binary, conformanceGroup, fragments, payload, pong, raw, text, wire } from './runner.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');
const ping = (data: string): Buffer => wire({ type: 'ping', fin: true, rsv1: false, payload: b(data) });
const unsolicitedPong = (data: string): Buffer => wire({ type: 'pong', fin: true, rsv1: false, payload: b(data) });
const hello = (): Buffer[] => fragments('text', [b('fragment1'), b('fragment2')]);

type Delivery = 'one write' | 'frame by frame' | '1-byte chops';
const DELIVERIES: readonly Delivery[] = ['one write', 'frame by frame', '1-byte chops'];

function deliver(how: Delivery, frames: Buffer[]): (client: CaseClient) => Promise<void> {
  return async (client) => {
    if (how === 'one write') client.send(...frames);
    else if (how === 'frame by frame') await client.sendApart(...frames);
    else await client.sendChopped(Buffer.concat(frames), 1);
  };
}

const cases: ConformanceCase[] = [
  {
    id: '5.1',
    title: 'ping fragmented into 2 fragments',
    violation: true,
    play(client) {
      client.send(raw({ opcode: OP.PING, payload: 'fragment1', fin: false }), raw({ opcode: OP.CONT, payload: 'fragment2' }));
    },
    expect: { events: [], close: 1002 },
  },
  {
    id: '5.2',
    title: 'pong fragmented into 2 fragments',
    violation: true,
    play(client) {
      client.send(raw({ opcode: OP.PONG, payload: 'fragment1', fin: false }), raw({ opcode: OP.CONT, payload: 'fragment2' }));
    },
    expect: { events: [], close: 1002 },
  },
];

DELIVERIES.forEach((how, i) => {
  cases.push({
    id: `5.${3 + i}`,
    title: `text in 2 fragments, ${how}`,
    async play(client) {
      await deliver(how, hello())(client);
      await client.awaitMessages(1);
    },
    expect: { events: [text('fragment1fragment2')], close: 1000, echoReceived: [describeEcho('text', 'fragment1fragment2')] },
  });
  cases.push({
    id: `5.${6 + i}`,
    title: `text in 2 fragments with a ping between them, ${how}`,
    async play(client) {
      const [first, second] = hello();
      await deliver(how, [first!, ping('pongme!'), second!])(client);
      await client.awaitMessages(1);
    },
    expect: { events: [pong('pongme!'), text('fragment1fragment2')], close: 1000 },
  });
  cases.push({
    id: `5.${9 + i}`,
    title: `continuation (FIN=1) with nothing to continue, then text, then ping, ${how}`,
    violation: true,
    async play(client) {
      await deliver(how, [raw({ opcode: OP.CONT, payload: 'fragment1' }), wire({ type: 'text', fin: true, rsv1: false, payload: b('fragment2') }), ping('')])(client);
    },
    expect: { events: [], close: 1002 },
  });
  cases.push({
    id: `5.${12 + i}`,
    title: `continuation (FIN=0) with nothing to continue, then text, then ping, ${how}`,
    violation: true,
    async play(client) {
      await deliver(how, [raw({ opcode: OP.CONT, payload: 'fragment1', fin: false }), wire({ type: 'text', fin: true, rsv1: false, payload: b('fragment2') }), ping('')])(client);
    },
    expect: { events: [], close: 1002 },
  });
});

cases.push(
  {
    id: '5.15',
    title: 'text in 2 fragments, then a continuation (FIN=0) with nothing to continue, then text, in one write',
    violation: true,
    play(client) {
      client.send(...hello(), raw({ opcode: OP.CONT, payload: 'fragment3', fin: false }), wire({ type: 'text', fin: true, rsv1: false, payload: b('fragment4') }));
    },
    expect: { events: [text('fragment1fragment2')], close: 1002 },
  },
  {
    id: '5.15.1',
    title: 'text in 2 fragments, its echo awaited, then a continuation (FIN=0) with nothing to continue',
    violation: true,
    async play(client) {
      client.send(...hello());
      await client.awaitMessages(1);
      client.send(raw({ opcode: OP.CONT, payload: 'fragment3', fin: false }), wire({ type: 'text', fin: true, rsv1: false, payload: b('fragment4') }));
    },
    expect: { events: [text('fragment1fragment2')], close: 1002 },
  },
  {
    id: '5.16',
    title: '2x: continuation (FIN=0) with nothing to continue, then text in 2 fragments',
    violation: true,
    play(client) {
      const round = [raw({ opcode: OP.CONT, payload: 'fragment1', fin: false }), ...fragments('text', [b('fragment2'), b('fragment3')])];
      client.send(...round, ...round);
    },
    expect: { events: [], close: 1002 },
  },
  {
    id: '5.17',
    title: '2x: continuation (FIN=1) with nothing to continue, then text in 2 fragments',
    violation: true,
    play(client) {
      const round = [raw({ opcode: OP.CONT, payload: 'fragment1' }), ...fragments('text', [b('fragment2'), b('fragment3')])];
      client.send(...round, ...round);
    },
    expect: { events: [], close: 1002 },
  },
  {
    id: '5.18',
    title: 'text in 2 fragments, both with the text opcode (text inside an open message)',
    violation: true,
    play(client) {
      client.send(raw({ opcode: OP.TEXT, payload: 'fragment1', fin: false }), raw({ opcode: OP.TEXT, payload: 'fragment2' }));
    },
    expect: { events: [], close: 1002 },
  },
  {
    id: '5.18.1',
    title: 'binary frame inside an open text message',
    violation: true,
    play(client) {
      client.send(raw({ opcode: OP.TEXT, payload: 'fragment1', fin: false }), raw({ opcode: OP.BINARY, payload: 'fragment2' }));
    },
    expect: { events: [], close: 1002 },
  },
  {
    id: '5.18.2',
    title: 'text frame (FIN=0) inside an open binary message',
    violation: true,
    play(client) {
      client.send(raw({ opcode: OP.BINARY, payload: 'fragment1', fin: false }), raw({ opcode: OP.TEXT, payload: 'fragment2', fin: false }), raw({ opcode: OP.CONT, payload: 'x' }));
    },
    expect: { events: [], close: 1002 },
  },
);

const parts = ['fragment1', 'fragment2', 'fragment3', 'fragment4', 'fragment5'].map(b);
for (const [id, chopped] of [['5.19', false], ['5.20', true]] as const) {
  cases.push({
    id,
    title: `text in 5 fragments, a ping after the 2nd and after the 4th, each pong awaited mid-message${chopped ? ', in 1-byte chops' : ''}`,
    async play(client) {
      const frames = fragments('text', parts);
      const send = async (...data: Buffer[]): Promise<void> => {
        if (chopped) await client.sendChopped(Buffer.concat(data), 1);
        else client.send(...data);
      };
      await send(frames[0]!, frames[1]!, ping('pongme 1!'));
      await client.awaitPongs(1);
      await send(frames[2]!, frames[3]!, ping('pongme 2!'));
      await client.awaitPongs(2);
      await send(frames[4]!);
      await client.awaitMessages(1);
    },
    expect: { events: [pong('pongme 1!'), pong('pongme 2!'), text(Buffer.concat(parts))], close: 1000 },
  });
}

const bin = payload(3000, 'binary');
const manyText = payload(10_000, 'text');
const oneByte = payload(16384, 'binary');
cases.push(
  {
    id: '5.21',
    title: 'binary in 3 fragments',
    async play(client) {
      client.send(...fragments('binary', [bin.subarray(0, 1000), bin.subarray(1000, 2000), bin.subarray(2000)]));
      await client.awaitMessages(1);
    },
    expect: { events: [binary(bin)], close: 1000 },
  },
  {
    id: '5.22',
    title: 'binary in 3 fragments with a ping and an unsolicited pong between them',
    async play(client) {
      const [f1, f2, f3] = fragments('binary', [bin.subarray(0, 1000), bin.subarray(1000, 2000), bin.subarray(2000)]);
      client.send(f1!, ping('in the middle'), f2!, unsolicitedPong('ignored'), f3!);
      await client.awaitMessages(1);
    },
    expect: { events: [pong('in the middle'), binary(bin)], close: 1000 },
  },
  {
    id: '5.23',
    title: 'text in 1000 fragments of 10 bytes',
    async play(client) {
      client.send(...fragments('text', Array.from({ length: 1000 }, (_, i) => manyText.subarray(i * 10, i * 10 + 10))));
      await client.awaitMessages(1);
    },
    expect: { events: [text(manyText)], close: 1000 },
  },
  {
    id: '5.24',
    title: 'binary in 16384 fragments of 1 byte (exactly the proxy\'s default fragment limit)',
    async play(client) {
      client.send(...fragments('binary', Array.from({ length: 16384 }, (_, i) => oneByte.subarray(i, i + 1))));
      await client.awaitMessages(1);
    },
    expect: { events: [binary(oneByte)], close: 1000 },
  },
  {
    id: '5.25',
    title: 'text with empty first, middle and last fragments',
    async play(client) {
      client.send(...fragments('text', ['', 'Hello', '', ', world', ''].map(b)));
      await client.awaitMessages(1);
    },
    expect: { events: [text('Hello, world')], close: 1000 },
  },
  {
    id: '5.26',
    title: 'text of 3 empty fragments',
    async play(client) {
      client.send(...fragments('text', [b(''), b(''), b('')]));
      await client.awaitMessages(1);
    },
    expect: { events: [text('')], close: 1000 },
  },
  {
    id: '5.27',
    title: 'binary with empty fragments, then text with an empty final fragment',
    async play(client) {
      client.send(...fragments('binary', [b(''), Buffer.from([1, 2, 3]), b('')]), ...fragments('text', [b('abc'), b('')]));
      await client.awaitMessages(2);
    },
    expect: { events: [binary(Buffer.from([1, 2, 3])), text('abc')], close: 1000 },
  },
  {
    id: '5.28',
    title: 'fragmented ping inside a fragmented text message',
    violation: true,
    play(client) {
      client.send(raw({ opcode: OP.TEXT, payload: 'fragment1', fin: false }), raw({ opcode: OP.PING, payload: 'p', fin: false }), raw({ opcode: OP.CONT, payload: 'q' }), raw({ opcode: OP.CONT, payload: 'fragment2' }));
    },
    expect: { events: [], close: 1002 },
  },
  {
    id: '5.29',
    title: 'two fragmented messages back to back, with pings inside both',
    async play(client) {
      const [a1, a2] = fragments('text', [b('first '), b('message')]);
      const [b1, b2, b3] = fragments('binary', [Buffer.from([9]), Buffer.from([8]), Buffer.from([7])]);
      client.send(a1!, ping('a'), a2!, b1!, b2!, ping('b'), b3!);
      await client.awaitMessages(2);
    },
    expect: { events: [pong('a'), text('first message'), pong('b'), binary(Buffer.from([9, 8, 7]))], close: 1000 },
  },
);

conformanceGroup('5 fragmentation', cases);
