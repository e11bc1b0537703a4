/**
 * Conformance group 3, reserved bits (after Autobahn 3.x): no extension is negotiated, so a frame
 * with RSV1, RSV2 or RSV3 set fails the connection with 1002 (RFC 6455 section 5.2), whatever its
 * type. RSV values follow Autobahn's numbering: 4 = RSV1, 2 = RSV2, 1 = RSV3.
 *
 * The "sent at once" cases (a valid message, the bad frame and a ping in one write; Autobahn
 * 3.2-3.4) hold the proxy to `ws`'s outcome exactly: the proxy stops reading the client at the bad
 * frame and sends the upstream 1001, but the echo of the valid message, already on its way, still
 * reaches the client before its 1002 (the `relayFirst` endings of `src/proxy/lifecycle.ts`). The
 * "after an echo" variants wait for the echo first.
 */
import { type ConformanceCase, OP, conformanceGroup, raw, text, wire } from './runner.js';

const hello = (): Buffer => wire({ type: 'text', fin: true, rsv1: false, payload: Buffer.from('Hello, world!') });
const ping = (): Buffer => wire({ type: 'ping', fin: true, rsv1: false, payload: Buffer.from('ping') });

const TARGETS = [
  { name: 'text', opcode: OP.TEXT, payload: 'Hello, world!' },
  { name: 'binary', opcode: OP.BINARY, payload: Buffer.from([0x00, 0xff, 0xfe, 0xfd]) },
  { name: 'ping', opcode: OP.PING, payload: 'ping payload' },
  { name: 'pong', opcode: OP.PONG, payload: 'pong payload' },
  { name: 'close', opcode: OP.CLOSE, payload: Buffer.from([0x03, 0xe8]) },
  { name: 'continuation', opcode: OP.CONT, payload: 'world!' },
] as const;

const cases: ConformanceCase[] = [];
TARGETS.forEach((target, t) => {
  for (let rsv = 1; rsv <= 7; rsv++) {
    const bad = raw({ opcode: target.opcode, payload: target.payload, rsv });
    if (target.opcode === OP.CONT) {
      // The continuation of an open message carries the bad bits.
      cases.push({
        id: `3.${t + 1}.${rsv}`,
        title: `RSV=${rsv} on the continuation of a fragmented text message`,
        violation: true,
        play(client) {
          client.send(raw({ opcode: OP.TEXT, payload: 'Hello, ', fin: false }), bad);
        },
        expect: { events: [], close: 1002 },
      });
      continue;
    }
    cases.push({
      id: `3.${t + 1}.${rsv}`,
      title: `RSV=${rsv} on a ${target.name} frame`,
      violation: true,
      play(client) {
        client.send(bad);
      },
      expect: { events: [], close: 1002 },
    });
  }
});

// Autobahn 3.2-3.4 style: a valid message first.
for (const rsv of [1, 2, 4]) {
  cases.push(
    {
      id: `3.8.${rsv}`,
      title: `text, then text with RSV=${rsv}, then ping, in one write`,
      violation: true,
      play(client) {
        client.send(hello(), raw({ opcode: OP.TEXT, payload: 'Hello, world!', rsv }), ping());
      },
      expect: { events: [text('Hello, world!')], close: 1002 },
    },
    {
      id: `3.9.${rsv}`,
      title: `text, its echo awaited, then text with RSV=${rsv}, then ping`,
      violation: true,
      async play(client) {
        client.send(hello());
        await client.awaitMessages(1);
        client.send(raw({ opcode: OP.TEXT, payload: 'Hello, world!', rsv }), ping());
      },
      expect: { events: [text('Hello, world!')], close: 1002 },
    },
    {
      id: `3.10.${rsv}`,
      title: `text, its echo awaited, then text with RSV=${rsv} and ping in 1-byte chops`,
      violation: true,
      async play(client) {
        client.send(hello());
        await client.awaitMessages(1);
        await client.sendChopped(Buffer.concat([raw({ opcode: OP.TEXT, payload: 'Hello, world!', rsv }), ping()]), 1);
      },
      expect: { events: [text('Hello, world!')], close: 1002 },
    },
  );
}

conformanceGroup('3 reserved bits', cases);
