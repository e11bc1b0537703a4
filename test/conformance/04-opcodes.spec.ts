/**
 * Conformance group 4, opcodes (after Autobahn 4.1 / 4.2): the reserved non-control opcodes 3-7 and
 * control opcodes 0xB-0xF fail the connection with 1002 (RFC 6455 section 5.2: "If an unknown opcode
 * is received, the receiving endpoint MUST _Fail the WebSocket Connection_"), alone, with a payload,
 * after a valid message, and in the middle of a fragmented one.
 *
 * The "sent at once" cases (text, reserved opcode, ping in one write; Autobahn 4.1.3-4.1.5,
 * 4.2.3-4.2.5) hold the proxy to `ws`'s outcome exactly, as in group 3: the echo of the text, still
 * on its way when the proxy parses the reserved opcode, reaches the client before its 1002.
 */
import { type ConformanceCase, OP, conformanceGroup, raw, text, wire } from './runner.js';

const hello = (): Buffer => wire({ type: 'text', fin: true, rsv1: false, payload: Buffer.from('Hello, world!') });
const ping = (): Buffer => wire({ type: 'ping', fin: true, rsv1: false, payload: Buffer.from('ping') });

const RESERVED = [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf];

const cases: ConformanceCase[] = [];
for (const opcode of RESERVED) {
  const group = opcode < 8 ? '4.1' : '4.2';
  const n = opcode < 8 ? opcode - 2 : opcode - 0xa;
  const name = `0x${opcode.toString(16)}`;
  cases.push(
    {
      id: `${group}.${n}.1`,
      title: `opcode ${name}, no payload`,
      violation: true,
      play(client) {
        client.send(raw({ opcode }));
      },
      expect: { events: [], close: 1002 },
    },
    {
      id: `${group}.${n}.2`,
      title: `opcode ${name} with a payload`,
      violation: true,
      play(client) {
        client.send(raw({ opcode, payload: 'reserved opcode payload' }));
      },
      expect: { events: [], close: 1002 },
    },
    {
      id: `${group}.${n}.3`,
      title: `text, its echo awaited, then opcode ${name} with a payload, then ping`,
      violation: true,
      async play(client) {
        client.send(hello());
        await client.awaitMessages(1);
        client.send(raw({ opcode, payload: 'reserved opcode payload' }), ping());
      },
      expect: { events: [text('Hello, world!')], close: 1002 },
    },
    {
      id: `${group}.${n}.4`,
      title: `text, opcode ${name}, ping, in one write`,
      violation: true,
      play(client) {
        client.send(hello(), raw({ opcode }), ping());
      },
      expect: { events: [text('Hello, world!')], close: 1002 },
    },
    {
      id: `${group}.${n}.5`,
      title: `opcode ${name} inside a fragmented text message`,
      violation: true,
      play(client) {
        client.send(raw({ opcode: OP.TEXT, payload: 'Hello, ', fin: false }), raw({ opcode, payload: 'x' }), raw({ opcode: OP.CONT, payload: 'world!' }));
      },
      expect: { events: [], close: 1002 },
    },
    {
      id: `${group}.${n}.6`,
      title: `text, its echo awaited, then opcode ${name} and ping in 1-byte chops`,
      violation: true,
      async play(client) {
        client.send(hello());
        await client.awaitMessages(1);
        await client.sendChopped(Buffer.concat([raw({ opcode, payload: 'reserved opcode payload' }), ping()]), 1);
      },
      expect: { events: [text('Hello, world!')], close: 1002 },
    },
  );
}

// Many messages queued ahead of the violation: the proxy parses the reserved opcode while its pipeline
// is backpressured (the socket paused), with messages parsed but not yet forwarded. As `ws` directly
// processes every message before the violation, the upstream must get, and echo, all 1000, and every
// echo must reach the client before its 1002: nothing parsed before the violation is dropped.
const many = Array.from({ length: 1000 }, (_, i) => wire({ type: 'text', fin: true, rsv1: false, payload: Buffer.from(`message ${i}`) }));
cases.push({
  id: '4.3.1',
  title: '1000 text messages, then opcode 0x3, then ping, in one write',
  violation: true,
  play(client) {
    client.send(...many, raw({ opcode: 3 }), ping());
  },
  expect: { events: Array.from({ length: 1000 }, (_, i) => text(`message ${i}`)), close: 1002 },
});

conformanceGroup('4 opcodes', cases);
