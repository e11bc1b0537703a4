/**
 * Conformance group 6, UTF-8 handling (after Autobahn 6.x): valid texts, in one frame and fragmented
 * at every byte boundary, are echoed; invalid ones (unexpected continuation bytes, lonely start
 * bytes, truncated sequences, impossible bytes, overlong forms, UTF-16 surrogates, code points above
 * U+10FFFF) fail the connection with 1007 (RFC 6455 section 8.1). Noncharacters such as U+FFFE are
 * valid UTF-8 and pass.
 *
 * Fail-fast (Autobahn 6.4): the proxy validates a fragmented text incrementally and fails the
 * connection on the fragment that makes it invalid; `ws` validates a text once the whole message is
 * in. Without timing this shows as follows: after the bad fragment the client sends a ping. `ws`
 * answers it (it has not looked at the text yet) and fails at the final fragment; the proxy has
 * failed already, so the ping is never answered. Same close code (1007), one pong fewer through the
 * proxy: an allowance with the proxy's own expected outcome.
 */
import { type Allowance, type ConformanceCase, OP, conformanceGroup, fragments, pong, raw, text, wire } from './runner.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
const ping = (data: string): Buffer => wire({ type: 'ping', fin: true, rsv1: false, payload: utf8(data) });

/** Valid texts (Autobahn 6.2, 6.5, 6.7-6.11, 6.22, 6.23 in spirit). */
const VALID: [string, Buffer][] = [
  ['Hello-µ@ßöäüàá-UTF-8!!', utf8('Hello-µ@ßöäüàá-UTF-8!!')],
  ['κόσμε', utf8('κόσμε')],
  ['first code point of each length: U+0000, U+0080, U+0800, U+10000', hex('00 c280 e0a080 f0908080')],
  ['last code point of each length: U+007F, U+07FF, U+FFFF, U+10FFFF', hex('7f dfbf efbfbf f48fbfbf')],
  ['boundaries: U+D7FF, U+E000, U+FFFD, U+10FFFF', hex('ed9fbf ee8080 efbfbd f48fbfbf')],
  ['noncharacters U+FFFE, U+FFFF, U+1FFFE, U+1FFFF, U+10FFFE', hex('efbfbe efbfbf f09fbfbe f09fbfbf f48fbfbe')],
  ['BOM U+FEFF and U+FFFD', hex('efbbbf efbfbd')],
  ['emoji and CJK', utf8('😀 中文 ∮ E⋅da = Q')],
];

/** Invalid texts (Autobahn 6.3, 6.12-6.21 in spirit). */
const INVALID: [string, Buffer][] = [
  ['κόσμε followed by a surrogate (ED A0 80) and "edited"', Buffer.concat([utf8('κόσμε'), hex('eda080'), utf8('edited')])],
  ['lone continuation byte 80', hex('80')],
  ['lone continuation byte BF', hex('bf')],
  ['continuation bytes 80 BF 80 BF', hex('80bf80bf')],
  ['lonely start byte C0 then space', hex('c020')],
  ['lonely start byte DF then space', hex('df20')],
  ['lonely start byte E0 then space', hex('e020')],
  ['lonely start byte EF then space', hex('ef20')],
  ['lonely start byte F0 then space', hex('f020')],
  ['lonely start byte F4 then space', hex('f420')],
  ['truncated 2-byte sequence at the end (CE)', Buffer.concat([utf8('κόσμ'), hex('ce')])],
  ['truncated 3-byte sequence at the end (E2 82)', Buffer.concat([utf8('price: '), hex('e282')])],
  ['truncated 4-byte sequence at the end (F0 9F 98)', Buffer.concat([utf8('smile '), hex('f09f98')])],
  ['truncated sequences concatenated (DF, EF BF, F4 8F BF)', hex('df efbf f48fbf')],
  ['impossible byte FE', hex('fe')],
  ['impossible byte FF', hex('ff')],
  ['impossible bytes FE FE FF FF', hex('fefeffff')],
  ['overlong "/" in 2 bytes (C0 AF)', hex('c0af')],
  ['overlong "/" in 3 bytes (E0 80 AF)', hex('e080af')],
  ['overlong "/" in 4 bytes (F0 80 80 AF)', hex('f08080af')],
  ['overlong "/" in 5 bytes (F8 80 80 80 AF)', hex('f8808080af')],
  ['maximum overlong 2 bytes (C1 BF)', hex('c1bf')],
  ['maximum overlong 3 bytes (E0 9F BF)', hex('e09fbf')],
  ['maximum overlong 4 bytes (F0 8F BF BF)', hex('f08fbfbf')],
  ['overlong NUL (C0 80)', hex('c080')],
  ['overlong NUL (E0 80 80)', hex('e08080')],
  ['surrogate U+D800 (ED A0 80)', hex('eda080')],
  ['surrogate U+DB7F (ED AD BF)', hex('edadbf')],
  ['surrogate U+DC00 (ED B0 80)', hex('edb080')],
  ['surrogate U+DFFF (ED BF BF)', hex('edbfbf')],
  ['paired surrogates U+D800 U+DC00 (CESU-8)', hex('eda080 edb080')],
  ['U+110000 (F4 90 80 80)', hex('f4908080')],
  ['F7 BF BF BF (above U+10FFFF)', hex('f7bfbfbf')],
  ['5-byte form (F8 88 80 80 80)', hex('f888808080')],
  ['6-byte form (FC 84 80 80 80 80)', hex('fc8480808080')],
  ['valid text then a NUL-padded invalid tail', Buffer.concat([utf8('Hello'), hex('00 c3 28')])],
];

const FAIL_FAST: Allowance = {
  why: 'the proxy validates fragments incrementally and fails at the bad fragment; ws validates the whole message, so it still answers the ping sent after the bad fragment',
  expect: { events: [], close: 1007 },
};

const everyByte = (data: Buffer): Buffer[] => (data.length === 0 ? [data] : Array.from(data, (_, i) => data.subarray(i, i + 1)));

const cases: ConformanceCase[] = [
  {
    id: '6.1.1',
    title: 'empty text message',
    async play(client) {
      client.send(wire({ type: 'text', fin: true, rsv1: false, payload: Buffer.alloc(0) }));
      await client.awaitMessages(1);
    },
    expect: { events: [text('')], close: 1000 },
  },
  {
    id: '6.1.2',
    title: 'text of 3 empty fragments',
    async play(client) {
      client.send(...fragments('text', [Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)]));
      await client.awaitMessages(1);
    },
    expect: { events: [text('')], close: 1000 },
  },
  {
    id: '6.1.3',
    title: 'text with empty first and middle fragments and a final "middle frame payload"',
    async play(client) {
      client.send(...fragments('text', [Buffer.alloc(0), utf8('middle frame payload'), Buffer.alloc(0), Buffer.alloc(0)]));
      await client.awaitMessages(1);
    },
    expect: { events: [text('middle frame payload')], close: 1000 },
  },
];

VALID.forEach(([name, data], i) => {
  cases.push(
    {
      id: `6.2.${i + 1}.1`,
      title: `valid: ${name}, one frame`,
      async play(client) {
        client.send(wire({ type: 'text', fin: true, rsv1: false, payload: data }));
        await client.awaitMessages(1);
      },
      expect: { events: [text(data)], close: 1000 },
    },
    {
      id: `6.2.${i + 1}.2`,
      title: `valid: ${name}, one fragment per byte`,
      async play(client) {
        client.send(...fragments('text', everyByte(data)));
        await client.awaitMessages(1);
      },
      expect: { events: [text(data)], close: 1000 },
    },
    {
      id: `6.2.${i + 1}.3`,
      title: `valid: ${name}, in 2 fragments split at every offset (one message each)`,
      async play(client) {
        for (let cut = 0; cut <= data.length; cut++) client.send(...fragments('text', [data.subarray(0, cut), data.subarray(cut)]));
        await client.awaitMessages(data.length + 1);
      },
      expect: { events: Array.from({ length: data.length + 1 }, () => text(data)), close: 1000 },
    },
  );
});

cases.push({
  id: '6.2.9',
  title: 'valid: one frame sent in 1-byte chops (κόσμε)',
  async play(client) {
    await client.sendChopped(wire({ type: 'text', fin: true, rsv1: false, payload: utf8('κόσμε') }), 1);
    await client.awaitMessages(1);
  },
  expect: { events: [text('κόσμε')], close: 1000 },
});

INVALID.forEach(([name, data], i) => {
  cases.push(
    {
      id: `6.3.${i + 1}.1`,
      title: `invalid: ${name}, one frame`,
      violation: true,
      play(client) {
        client.send(raw({ opcode: OP.TEXT, payload: data }));
      },
      expect: { events: [], close: 1007 },
    },
    {
      id: `6.3.${i + 1}.2`,
      title: `invalid: ${name}, one fragment per byte, in one write`,
      violation: true,
      play(client) {
        client.send(...fragments('text', everyByte(data)));
      },
      expect: { events: [], close: 1007 },
    },
  );
});

// Fail-fast (Autobahn 6.4): the text becomes invalid before its last fragment; a ping follows.
const FAIL_FAST_CASES: [string, Buffer[]][] = [
  ['valid, then U+110000 in its own fragment, then valid', [utf8('κόσμε'), hex('f4908080'), utf8('edited')]],
  ['valid, then a surrogate cut across two fragments, then valid', [Buffer.concat([utf8('κόσμε'), hex('ed')]), Buffer.concat([hex('a080'), utf8('edited')]), utf8('!')]],
  ['an invalid first fragment (C0 AF)', [hex('c0af'), utf8('rest')]],
  ['valid, then a lone continuation byte, then valid', [utf8('Hello'), hex('80'), utf8('world')]],
];
FAIL_FAST_CASES.forEach(([name, parts], i) => {
  const frames = fragments('text', parts);
  cases.push({
    id: `6.4.${i + 1}`,
    title: `fail fast: ${name}; a ping after the bad fragment`,
    violation: true,
    async play(client) {
      // Everything up to the fragment that makes the text invalid, then a ping.
      client.send(...frames.slice(0, -1), ping('after the bad fragment'));
      await client.awaitPongs(1);
      client.send(frames[frames.length - 1]!);
    },
    // ws: the pong, then 1007 at the end of the message.
    expect: { events: [pong('after the bad fragment')], close: 1007 },
    allow: { proxied: FAIL_FAST, aggregated: FAIL_FAST },
  });
});

cases.push({
  id: '6.4.5',
  title: 'invalid in one frame sent in chops: valid part, the bad bytes, the rest',
  violation: true,
  async play(client) {
    const frame = raw({ opcode: OP.TEXT, payload: Buffer.concat([utf8('κόσμε'), hex('f4908080'), utf8('edited')]) });
    // Header and the valid part, then the bad bytes, then the rest, each in its own write.
    const head = frame.length - 4 - 6;
    await client.sendApart(frame.subarray(0, head), frame.subarray(head, head + 4), frame.subarray(head + 4));
  },
  expect: { events: [], close: 1007 },
});

conformanceGroup('6 UTF-8', cases);
