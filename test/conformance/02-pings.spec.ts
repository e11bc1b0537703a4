/**
 * Conformance group 2, pings and pongs (after Autobahn 2.x): the server answers every ping with a
 * pong carrying the ping's payload (RFC 6455 section 5.5.3), ignores unsolicited pongs, and fails the
 * connection (1002) on a ping over 125 bytes. Through the proxy the ping goes to the echo server,
 * which answers it; the pong comes back. (No ping flood: ws 8.23 terminates a connection with more
 * than 60 unsent pongs, `maxPendingAutoPongs`.)
 */
import { type ConformanceCase, OP, conformanceGroup, payload, pong, raw, wire } from './runner.js';

const ping = (data: string | Buffer = ''): Buffer => wire({ type: 'ping', fin: true, rsv1: false, payload: typeof data === 'string' ? Buffer.from(data) : data });
const unsolicited = (data: string | Buffer = ''): Buffer => wire({ type: 'pong', fin: true, rsv1: false, payload: typeof data === 'string' ? Buffer.from(data) : data });

const binaryPayload = Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]);
const max = payload(125, 'binary');
const LENGTHS = Array.from({ length: 126 }, (_, i) => i);

const cases: ConformanceCase[] = [
  {
    id: '2.1',
    title: 'ping without payload',
    async play(client) {
      client.send(ping());
      await client.awaitPongs(1);
    },
    expect: { events: [pong()], close: 1000 },
  },
  {
    id: '2.2',
    title: 'ping with a small text payload',
    async play(client) {
      client.send(ping('Hello, world!'));
      await client.awaitPongs(1);
    },
    expect: { events: [pong('Hello, world!')], close: 1000 },
  },
  {
    id: '2.3',
    title: 'ping with a small binary payload',
    async play(client) {
      client.send(ping(binaryPayload));
      await client.awaitPongs(1);
    },
    expect: { events: [pong(binaryPayload)], close: 1000 },
  },
  {
    id: '2.4',
    title: 'ping with a 125-byte binary payload',
    async play(client) {
      client.send(ping(max));
      await client.awaitPongs(1);
    },
    expect: { events: [pong(max)], close: 1000 },
  },
  {
    id: '2.5',
    title: 'ping with a 126-byte payload fails the connection',
    violation: true,
    play(client) {
      client.send(raw({ opcode: OP.PING, payload: payload(126, 'binary') }));
    },
    expect: { events: [], close: 1002 },
  },
  {
    id: '2.6',
    title: 'ping with a 125-byte payload sent in 1-byte chops',
    async play(client) {
      await client.sendChopped(ping(max), 1);
      await client.awaitPongs(1);
    },
    expect: { events: [pong(max)], close: 1000 },
  },
  {
    id: '2.7',
    title: 'unsolicited pong without payload is ignored',
    play(client) {
      client.send(unsolicited());
    },
    expect: { events: [], close: 1000 },
  },
  {
    id: '2.8',
    title: 'unsolicited pong with payload is ignored',
    play(client) {
      client.send(unsolicited('unsolicited pong payload'));
    },
    expect: { events: [], close: 1000 },
  },
  {
    id: '2.9',
    title: 'unsolicited pong, then a ping: only the ping is answered',
    async play(client) {
      client.send(unsolicited('unsolicited pong payload'), ping('ping payload'));
      await client.awaitPongs(1);
    },
    expect: { events: [pong('ping payload')], close: 1000 },
  },
  {
    id: '2.10',
    title: '10 pings in a row, each answered in order',
    async play(client) {
      client.send(...Array.from({ length: 10 }, (_, i) => ping(`payload-${i}`)));
      await client.awaitPongs(10);
    },
    expect: { events: Array.from({ length: 10 }, (_, i) => pong(`payload-${i}`)), close: 1000 },
  },
  {
    id: '2.11',
    title: '10 pings in a row, sent in 1-byte chops',
    async play(client) {
      await client.sendChopped(Buffer.concat(Array.from({ length: 10 }, (_, i) => ping(`payload-${i}`))), 1);
      await client.awaitPongs(10);
    },
    expect: { events: Array.from({ length: 10 }, (_, i) => pong(`payload-${i}`)), close: 1000 },
  },
  {
    id: '2.12',
    title: 'pings with every payload length 0..125, each pong echoing its ping',
    async play(client) {
      // In batches of 21: ws (8.23) terminates a connection with more than 60 of its pongs unsent
      // (maxPendingAutoPongs), a ping-flood guard this case is not about.
      for (let i = 0; i < LENGTHS.length; i += 21) {
        client.send(...LENGTHS.slice(i, i + 21).map((n) => ping(payload(n, 'binary'))));
        await client.awaitPongs(Math.min(i + 21, LENGTHS.length));
      }
    },
    expect: { events: LENGTHS.map((n) => pong(payload(n, 'binary'))), close: 1000 },
  },
  {
    id: '2.13',
    title: 'ping with a 126-byte payload in a 16-bit length, after a valid ping',
    violation: true,
    async play(client) {
      client.send(ping('first'));
      await client.awaitPongs(1);
      client.send(raw({ opcode: OP.PING, payload: payload(126, 'text'), lengthForm: 16 }));
    },
    expect: { events: [pong('first')], close: 1002 },
  },
  {
    id: '2.14',
    title: 'ping with a 65535-byte payload',
    violation: true,
    play(client) {
      client.send(raw({ opcode: OP.PING, payload: payload(65535, 'binary') }));
    },
    expect: { events: [], close: 1002 },
  },
];

conformanceGroup('2 ping/pong', cases);
