/**
 * Conformance group 7, close handling (after Autobahn 7.x): the server answers a close frame with a
 * close frame echoing its code (and, for `ws`, its reason) and then closes TCP; nothing the client
 * sends after its close frame is answered; a close body of 1 byte, a control payload over 125 bytes
 * or a code that may not be sent fail the connection with 1002, an invalid UTF-8 reason with 1007.
 * Through the proxy the client's close is forwarded to the echo server and its reply forwarded back,
 * so codes and reasons arrive as the echo server sent them.
 *
 * Codes: the valid set is what `ws` (8.23) itself accepts, which is also the proxy's
 * (`isValidCloseCode`): 1000-1003, 1007-1014 and 3000-4999. 1012-1014 are registered with IANA
 * after RFC 6455 and accepted by both. 1004, 1005, 1006, 1015, codes below 1000, 1016-2999 and 5000
 * and up fail the connection with 1002.
 */
import { type ConformanceCase, OP, closeBody, conformanceGroup, payload, raw, text, wire } from './runner.js';

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
const hello = (): Buffer => wire({ type: 'text', fin: true, rsv1: false, payload: utf8('Hello World!') });
const ping = (): Buffer => wire({ type: 'ping', fin: true, rsv1: false, payload: utf8('ping') });
const close = (code?: number, reason = ''): Buffer => wire({ type: 'close', fin: true, rsv1: false, payload: utf8(reason), ...(code === undefined ? {} : { code }) });
const rawClose = (body: Buffer): Buffer => raw({ opcode: OP.CLOSE, payload: body });

const big = payload(256 * 1024, 'text');
const chunk = payload(64 * 1024, 'binary');

const cases: ConformanceCase[] = [
  {
    id: '7.1.1',
    title: 'text echoed, then a normal close',
    async play(client) {
      client.send(hello());
      await client.awaitMessages(1);
      client.sendClose(1000);
    },
    expect: { events: [text('Hello World!')], close: 1000 },
  },
  {
    id: '7.1.2',
    title: 'two close frames in a row: the second is ignored',
    play(client) {
      client.sendCloseBytes(Buffer.concat([close(1000), close(1001)]));
    },
    expect: { events: [], close: 1000 },
  },
  {
    id: '7.1.3',
    title: 'ping after the close frame is not answered',
    play(client) {
      client.sendCloseBytes(Buffer.concat([close(1000), ping()]));
    },
    expect: { events: [], close: 1000 },
  },
  {
    id: '7.1.4',
    title: 'text after the close frame is not echoed',
    play(client) {
      client.sendCloseBytes(Buffer.concat([close(1000), hello()]));
    },
    expect: { events: [], close: 1000 },
  },
  {
    id: '7.1.5',
    title: 'fragment, close, continuation: the message is never completed',
    play(client) {
      client.sendCloseBytes(Buffer.concat([raw({ opcode: OP.TEXT, payload: 'fragment1', fin: false }), close(1000), raw({ opcode: OP.CONT, payload: 'fragment2' })]));
    },
    expect: { events: [], close: 1000 },
  },
  {
    id: '7.1.6',
    title: '256 KiB text, close and ping in one write: the echo comes back before the close',
    play(client) {
      client.sendCloseBytes(Buffer.concat([wire({ type: 'text', fin: true, rsv1: false, payload: big }), close(1000), ping()]));
    },
    expect: { events: [text(big)], close: 1000 },
  },
  {
    id: '7.1.7',
    title: '10 binary messages of 64 KiB and a close in one write: every echo comes back before the close',
    play(client) {
      const message = wire({ type: 'binary', fin: true, rsv1: false, payload: chunk });
      client.sendCloseBytes(Buffer.concat([...Array.from({ length: 10 }, () => message), close(1000, 'done')]));
    },
    expect: { events: Array.from({ length: 10 }, () => ({ kind: 'binary' as const, data: chunk })), close: 1000 },
  },
  {
    id: '7.1.8',
    title: 'close, then the client ends its TCP half at once: the close reply still arrives',
    play(client) {
      client.sendClose(1000, 'half-close');
      client.socket.end();
    },
    expect: { events: [], close: 1000 },
  },
  {
    id: '7.1.9',
    title: 'close, then the client drops TCP at once: nothing more to see; the proxy ends cleanly',
    play(client) {
      client.sendClose(1000);
      client.socket.destroy();
    },
    expect: { events: [], close: 'none' },
    checkOutcome(result) {
      if (result.summary?.client.closeReceived?.code !== 1000) throw new Error(`summary.client.closeReceived: ${JSON.stringify(result.summary?.client.closeReceived)}`);
    },
  },
  {
    id: '7.1.10',
    title: 'close frame sent in 1-byte chops',
    async play(client) {
      client.closeSent = true;
      await client.sendChopped(close(1000, 'chopped'), 1);
    },
    expect: { events: [], close: 1000 },
  },
  {
    id: '7.3.1',
    title: 'close with an empty body: an empty close comes back',
    play(client) {
      client.sendClose();
    },
    expect: { events: [], close: 'empty' },
  },
  {
    id: '7.3.2',
    title: 'close with a 1-byte body',
    violation: true,
    play(client) {
      client.sendCloseBytes(rawClose(Buffer.from([0x03])));
    },
    expect: { events: [], close: 1002 },
  },
  {
    id: '7.3.3',
    title: 'close with a code and no reason',
    play(client) {
      client.sendClose(1000);
    },
    expect: { events: [], close: 1000 },
  },
  {
    id: '7.3.4',
    title: 'close with a code and a reason: both echoed',
    play(client) {
      client.sendClose(1000, 'Hello World!');
    },
    expect: { events: [], close: 1000 },
  },
  {
    id: '7.3.5',
    title: 'close with a 123-byte reason (the most that fits)',
    play(client) {
      client.sendCloseBytes(rawClose(closeBody(1000, payload(123, 'text'))));
    },
    expect: { events: [], close: 1000 },
  },
  {
    id: '7.3.6',
    title: 'close with a 124-byte reason (126-byte control payload)',
    violation: true,
    play(client) {
      client.sendCloseBytes(rawClose(closeBody(1000, payload(124, 'text'))));
    },
    expect: { events: [], close: 1002 },
  },
  {
    id: '7.3.7',
    title: 'close with a 123-byte reason of 3-byte characters',
    play(client) {
      client.sendCloseBytes(rawClose(closeBody(1000, utf8('€'.repeat(41)))));
    },
    expect: { events: [], close: 1000 },
  },
  {
    id: '7.5.1',
    title: 'close reason that is not valid UTF-8',
    violation: true,
    play(client) {
      client.sendCloseBytes(rawClose(closeBody(1000, Buffer.concat([utf8('κόσμε'), Buffer.from('eda080', 'hex'), utf8('edited')]))));
    },
    expect: { events: [], close: 1007 },
  },
  {
    id: '7.5.2',
    title: 'close reason ending in a truncated sequence',
    violation: true,
    play(client) {
      client.sendCloseBytes(rawClose(closeBody(1000, Buffer.concat([utf8('bye '), Buffer.from('e282', 'hex')]))));
    },
    expect: { events: [], close: 1007 },
  },
];

const VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
VALID_CODES.forEach((code, i) => {
  cases.push({
    id: `7.7.${i + 1}`,
    title: `close with valid code ${code} is echoed`,
    play(client) {
      client.sendClose(code, `code ${code}`);
    },
    expect: { events: [], close: code },
  });
});

const INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
INVALID_CODES.forEach((code, i) => {
  cases.push({
    id: `7.9.${i + 1}`,
    title: `close with invalid code ${code}`,
    violation: true,
    play(client) {
      client.sendCloseBytes(rawClose(closeBody(code)));
    },
    expect: { events: [], close: 1002 },
  });
});

cases.push({
  id: '7.9.13',
  title: 'close with invalid code 1005 and a reason, after an echoed message',
  violation: true,
  async play(client) {
    client.send(hello());
    await client.awaitMessages(1);
    client.sendCloseBytes(rawClose(closeBody(1005, 'no status')));
  },
  expect: { events: [text('Hello World!')], close: 1002 },
});

conformanceGroup('7 close handling', cases);
