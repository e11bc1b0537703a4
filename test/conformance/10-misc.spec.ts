/**
 * Conformance group 10, miscellaneous (after Autobahn 10.1, auto-fragmentation, plus a few framing
 * rules Autobahn checks elsewhere): a 64 KiB message sent in 1 KiB frames reaches the echo server as
 * one message and comes back whole, in one frame; unmasked client frames fail the connection (1002,
 * RFC 6455 section 5.1); so does a 64-bit length with its most significant bit set (section 5.2).
 *
 * 10.4-10.7 turn the roles around: on a command the echo server closes, pings, sends a fragmented
 * message or drops TCP, and the client answers as a client must. Allowances:
 * - with `aggregateFragments: true` the proxy forwards a fragmented message from the upstream as one
 *   frame, and a ping interleaved in it ahead of it: the client sees the same messages and pings,
 *   re-fragmented, so events are compared instead of frames;
 * - when the upstream drops TCP without a close frame, the proxy sends the client 1001 (the issue's
 *   "upstream TCP loss -> client gets close 1001") where a direct client sees no close frame.
 */
import {
  type Allowance, type ConformanceCase, OP, binary, command, conformanceGroup, describeData, describeEcho, fragments, payload, ping, raw, text,
} from './runner.js';

const KiB = 1024;
const message = payload(64 * KiB, 'text');
const blob = payload(64 * KiB, 'binary');
const wire = (data: string): Buffer => raw({ opcode: OP.TEXT, payload: data });
const inKiB = (data: Buffer): Buffer[] => Array.from({ length: data.length / KiB }, (_, i) => data.subarray(i * KiB, (i + 1) * KiB));

const MSB_LENGTH: Allowance = {
  why: 'a 64-bit length with its most significant bit set breaks RFC 6455 section 5.2, and the proxy answers 1002; ws reads it as a length over 2^53 - 1 and answers 1009',
  expect: { events: [], close: 1002 },
};

const cases: ConformanceCase[] = [
  {
    id: '10.1.1',
    title: '64 KiB text in 64 frames of 1 KiB: one message at the echo server, one frame back',
    async play(client) {
      client.send(...fragments('text', inKiB(message)));
      await client.awaitMessages(1);
      const back = client.frames.filter((f) => f.opcode === OP.TEXT || f.opcode === OP.CONT);
      if (back.length !== 1 || !back[0]!.fin) throw new Error(`the echo came back in ${back.length} frames`);
    },
    expect: { events: [text(message)], close: 1000, echoReceived: [describeEcho('text', message)] },
  },
  {
    id: '10.1.2',
    title: '64 KiB binary in 64 frames of 1 KiB sent frame by frame: one message at the echo server, one frame back',
    async play(client) {
      await client.sendApart(...fragments('binary', inKiB(blob)));
      await client.awaitMessages(1);
      const back = client.frames.filter((f) => f.opcode === OP.BINARY || f.opcode === OP.CONT);
      if (back.length !== 1 || !back[0]!.fin) throw new Error(`the echo came back in ${back.length} frames`);
    },
    expect: { events: [binary(blob)], close: 1000, echoReceived: [describeEcho('binary', blob)] },
  },
  {
    id: '10.2.1',
    title: 'unmasked text frame from the client',
    violation: true,
    play(client) {
      client.send(raw({ opcode: OP.TEXT, payload: 'Hello, world!', mask: false }));
    },
    expect: { events: [], close: 1002 },
  },
  {
    id: '10.2.2',
    title: 'unmasked ping after a masked one',
    violation: true,
    async play(client) {
      client.send(raw({ opcode: OP.PING, payload: 'masked' }));
      await client.awaitPongs(1);
      client.send(raw({ opcode: OP.PING, payload: 'unmasked', mask: false }));
    },
    expect: { events: [{ kind: 'pong', data: Buffer.from('masked') }], close: 1002 },
  },
  {
    id: '10.2.3',
    title: 'unmasked close frame from the client',
    violation: true,
    play(client) {
      client.sendCloseBytes(raw({ opcode: OP.CLOSE, payload: Buffer.from([0x03, 0xe8]), mask: false }));
    },
    expect: { events: [], close: 1002 },
  },
  {
    id: '10.3.1',
    title: '64-bit length with the most significant bit set',
    violation: true,
    play(client) {
      client.send(raw({ opcode: OP.BINARY, payload: 'abc', lengthForm: 64, lengthMsb: true }));
    },
    // ws: 1009 ("payload length > 2^53 - 1").
    expect: { events: [], close: 1009 },
    allow: { proxied: MSB_LENGTH, aggregated: MSB_LENGTH },
  },
];

const REFRAGMENTED: Allowance = {
  why: 'aggregateFragments: true forwards the fragmented message as one frame, and the ping inside it ahead of it',
  refragmented: true,
};
const UPSTREAM_LOST: Allowance = {
  why: 'the upstream dropped TCP without a close frame: the proxy closes the client with 1001',
  expect: { events: [], close: 1001 },
};
const cmd = (...words: (string | number)[]): string => describeEcho('text', Buffer.concat([Buffer.from('\u0000cmd '), Buffer.from(words.join(' '))]));
const fragmentedText = 'a fragmented message from the server, in three parts';

cases.push(
  {
    id: '10.4.1',
    title: 'the server closes with 1000 and a reason; the client answers',
    play(client) {
      client.send(command('close', 1000, 'server says bye'));
    },
    expect: { events: [], close: 1000, echoReceived: [cmd('close', 1000, 'server says bye')] },
  },
  {
    id: '10.4.2',
    title: 'the server closes with 4000 and a reason; the client answers',
    play(client) {
      client.send(command('close', 4000, 'application code'));
    },
    expect: { events: [], close: 4000 },
  },
  {
    id: '10.4.3',
    title: 'the server closes with an empty close body; the client answers',
    play(client) {
      client.send(command('close'));
    },
    expect: { events: [], close: 'empty' },
  },
  {
    id: '10.4.4',
    title: 'the server closes while the client still sends: messages after its close are not echoed',
    play(client) {
      client.send(command('close', 1001, 'going away'), wire('one'), wire('two'));
    },
    expect: { events: [], close: 1001 },
  },
  {
    id: '10.5.1',
    title: 'the server pings; the client\'s pong reaches it',
    async play(client) {
      client.send(command('ping', 'are you there?'));
      await client.until(() => client.events.some((e) => e.kind === 'ping'));
    },
    expect: { events: [ping('are you there?')], close: 1000, echoReceived: [cmd('ping', 'are you there?'), describeData('pong', Buffer.from('are you there?'))] },
  },
  {
    id: '10.6.1',
    title: 'the server sends a text message in 3 fragments with a ping after the first',
    async play(client) {
      client.send(command('fragments', 'text', 3, fragmentedText));
      await client.awaitMessages(1);
    },
    expect: { events: [ping('between fragments'), text(fragmentedText)], close: 1000 },
    allow: { aggregated: REFRAGMENTED },
  },
  {
    id: '10.6.2',
    title: 'the server sends a binary message in 5 fragments with a ping after the first',
    async play(client) {
      client.send(command('fragments', 'binary', 5, fragmentedText));
      await client.awaitMessages(1);
    },
    expect: { events: [ping('between fragments'), binary(fragmentedText)], close: 1000 },
    allow: { aggregated: REFRAGMENTED },
  },
  {
    id: '10.8.1',
    title: 'a text frame in the same write as the upgrade request',
    early: () => wire('sent with the upgrade request'),
    async play(client) {
      await client.awaitMessages(1);
    },
    expect: { events: [text('sent with the upgrade request')], close: 1000 },
  },
  {
    id: '10.8.2',
    title: 'a fragmented text with a ping inside, and a close, in the same write as the upgrade request',
    early: () => Buffer.concat([
      ...fragments('text', [Buffer.from('early '), Buffer.from('bird')]).flatMap((f, i) => (i === 0 ? [f, raw({ opcode: OP.PING, payload: 'early ping' })] : [f])),
      raw({ opcode: OP.CLOSE, payload: Buffer.from([0x03, 0xe8, 0x6f, 0x6b]) }),
    ]),
    earlyClose: true,
    play() {},
    expect: { events: [{ kind: 'pong', data: Buffer.from('early ping') }, text('early bird')], close: 1000 },
  },
  {
    id: '10.8.3',
    title: 'a reserved opcode in the same write as the upgrade request',
    violation: true,
    early: () => raw({ opcode: 0xb, payload: 'too early' }),
    play() {},
    expect: { events: [], close: 1002 },
  },
  {
    id: '10.7.1',
    title: 'the server drops TCP without a close frame',
    play(client) {
      client.send(command('terminate'));
    },
    expect: { events: [], close: 'none' },
    allow: { proxied: UPSTREAM_LOST, aggregated: UPSTREAM_LOST },
  },
);

conformanceGroup('10 misc', cases);
