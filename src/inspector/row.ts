/**
 * What the inspector keeps of a frame: an {@link Entry}, one object holding the frame's fields and
 * where its copy of (the first bytes of) the payload lies, in a slab shared with other small
 * payloads. The row the table shows, its preview and its JSON are made from it when asked for: a
 * frame that no page looks at costs one object and one copy of its bytes, which matters at tens of
 * thousands of frames a second.
 *
 * @packageDocumentation
 */
import type { Frame, FrameType } from '../frame.js';
import { encodeData } from '../record/format.js';
import type { ProxyRole } from '../proxy/options.js';
import type { MessageDetail, MessageRow } from './types.js';

/** Characters of text a preview shows. */
const PREVIEW_CHARS = 120;
/** Bytes of binary a preview shows (as hex). */
const PREVIEW_BYTES = 40;
/** Bytes enough for {@link PREVIEW_CHARS} characters of UTF-8 (4 bytes each at most). */
const PREVIEW_TEXT_BYTES = PREVIEW_CHARS * 4;
/** Bytes an entry counts for besides its payload copy: the entry object and the buffer's. */
export const ENTRY_OVERHEAD = 200;

/** Flags of an entry. */
export const EDITED = 1;
export const INJECTED = 2;

/**
 * A frame as the inspector keeps it. Its fields are rewritten when the hub recycles it for a newer
 * frame (see {@link makeEntry}): read them at once, never keep an entry across turns. @internal
 */
export class Entry {
  /** Per connection, from 1. */
  seq = 0;
  /** Epoch ms. */
  time = 0;
  /** The side that sent it (for an injected frame, the side it stands in for). */
  from: ProxyRole = 'client';
  type: FrameType = 'text';
  fin = true;
  /** Payload bytes of the whole frame. */
  size = 0;
  /** A close frame's code. */
  code: number | undefined = undefined;
  /** {@link EDITED} and {@link INJECTED}. */
  flags = 0;
  /** Whether the message is binary (a continuation frame's is its message's). */
  binary = false;
  /** The buffer holding the kept bytes (a shared slab for small payloads: see {@link keepBytes}). */
  private store: Buffer = EMPTY;
  /** Where they start in it. */
  private offset = 0;
  /** How many bytes were kept (all of the payload, or its first bytes). */
  kept = 0;

  /** @internal sets every field (a new entry, or a recycled one) */
  fill(seq: number, from: ProxyRole, frame: Frame, binary: boolean, flags: number, store: Buffer, offset: number, kept: number): this {
    this.seq = seq;
    this.time = Date.now();
    this.from = from;
    this.type = frame.type;
    this.fin = frame.fin;
    this.size = frame.payload.length;
    this.code = frame.code;
    this.flags = flags;
    this.binary = binary;
    this.store = store;
    this.offset = offset;
    this.kept = kept;
    return this;
  }

  /** The kept bytes: a view made on demand (rows no page looks at never make one). */
  get payload(): Buffer {
    return this.store.subarray(this.offset, this.offset + this.kept);
  }

  /** What it counts for in the memory bounds. */
  get cost(): number {
    return this.kept + ENTRY_OVERHEAD;
  }

  /** Whether the payload is shown as hex: binary, and pings and pongs that are not printable. */
  get hex(): boolean {
    if (this.binary) return true;
    return (this.type === 'ping' || this.type === 'pong') && !isPrintable(this.payload);
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The entry of a frame.
 *
 * @param frame - the frame (its payload is copied, never kept)
 * @param seq - its sequence number
 * @param from - the side that sent it
 * @param binary - whether its message is binary
 * @param flags - {@link EDITED}, {@link INJECTED}
 * @param maxPayload - most payload bytes to keep
 * @param reuse - an entry no one reads any more (shed from a full ring) to fill instead of a new
 *   one: a flood then allocates nothing per frame but its bytes' copy, and leaves no entry to collect
 */
export function makeEntry(frame: Frame, seq: number, from: ProxyRole, binary: boolean, flags: number, maxPayload: number, reuse?: Entry): Entry {
  const textual = !binary && frame.type !== 'ping' && frame.type !== 'pong';
  const payload = frame.payload;
  const kept = keptLength(payload, maxPayload, textual);
  const offset = keepBytes(payload, kept);
  return (reuse ?? new Entry()).fill(seq, from, frame, binary, flags, slab, offset, kept);
}

/**
 * Bytes of a slab: small payloads are copied one after the other into a shared slab, so that a
 * kept frame costs one object (its {@link Entry}) and not a `Buffer` too. A slab lives while any
 * entry in it does: what a kept frame can hold alive besides its own bytes is bounded by this, as
 * with `Buffer.allocUnsafe`'s own pool (of the same size).
 */
const SLAB_BYTES = 8 * 1024;
/** Payloads above this get a buffer of their own. */
const SLAB_MAX = SLAB_BYTES / 4;
/** The slab being filled, then (after {@link keepBytes}) the buffer holding the last kept bytes. */
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabUsed = 0;

/**
 * Copies the first `length` bytes of a payload; sets {@link slab} to the buffer they went into.
 *
 * @returns their offset in it
 */
function keepBytes(payload: Buffer, length: number): number {
  if (length > SLAB_MAX) {
    slab = Buffer.allocUnsafeSlow(length);
    slabUsed = SLAB_BYTES; // the next small payload starts a new slab
    payload.copy(slab, 0, 0, length);
    return 0;
  }
  if (slabUsed + length > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabUsed = 0;
  }
  const offset = slabUsed;
  // A whole small payload (the common case) goes by TypedArray.set, without Buffer.copy's checks.
  if (length === payload.length) slab.set(payload, offset);
  else payload.copy(slab, offset, 0, length);
  slabUsed += length;
  return offset;
}

/**
 * How many of a payload's first bytes to keep: at most `max`, text cut at a character boundary
 * so that the kept bytes still decode.
 */
function keptLength(payload: Buffer, max: number, text: boolean): number {
  let end = Math.min(payload.length, max);
  // Back off from the middle of a character: continuation bytes are 10xxxxxx.
  if (text && end < payload.length) while (end > 0 && (payload[end]! & 0xc0) === 0x80) end--;
  return end;
}

/**
 * The first `max` bytes of a payload, copied (payloads may be views into socket chunks that the
 * peer's next bytes reuse). Text is cut at a character boundary so that the kept bytes still decode.
 *
 * @param payload - the frame's payload (never modified)
 * @param max - most bytes to keep
 * @param text - whether the bytes are UTF-8 text
 */
export function keepPayload(payload: Buffer, max: number, text: boolean): Buffer {
  const end = keptLength(payload, max, text);
  const copy = Buffer.allocUnsafe(end);
  payload.copy(copy, 0, 0, end);
  return copy;
}

/**
 * The preview of a payload: text's first characters, or binary's first bytes in hex.
 *
 * @param payload - the payload (or its kept bytes)
 * @param hex - whether to show hex
 */
export function preview(payload: Buffer, hex: boolean): string {
  if (hex) return payload.toString('hex', 0, Math.min(payload.length, PREVIEW_BYTES));
  const text = payload.toString('utf8', 0, Math.min(payload.length, PREVIEW_TEXT_BYTES));
  if (text.length <= PREVIEW_CHARS) return text;
  // Never leave half of a surrogate pair at the end.
  const cut = (text.charCodeAt(PREVIEW_CHARS - 1) & 0xfc00) === 0xd800 ? PREVIEW_CHARS - 1 : PREVIEW_CHARS;
  return text.slice(0, cut);
}

/**
 * The row of an entry.
 *
 * @param connection - its connection's id
 * @param entry - the entry
 */
export function rowOf(connection: string, entry: Entry): MessageRow {
  const row: MessageRow = {
    connection,
    seq: entry.seq,
    time: entry.time,
    from: entry.from,
    type: entry.type,
    fin: entry.fin,
    size: entry.size,
    preview: preview(entry.payload, entry.hex),
  };
  if (entry.code !== undefined) row.code = entry.code;
  if ((entry.flags & EDITED) !== 0) row.edited = true;
  if ((entry.flags & INJECTED) !== 0) row.injected = true;
  return row;
}

/**
 * The JSON of an entry's row, as `JSON.stringify(rowOf(...))` would write it, without the object.
 *
 * @param connectionJson - the connection's id, as JSON
 * @param entry - the entry
 */
export function rowJson(connectionJson: string, entry: Entry): string {
  let json = `{"connection":${connectionJson},"seq":${entry.seq},"time":${entry.time},"from":"${entry.from}","type":"${entry.type}",` +
    `"fin":${entry.fin},"size":${entry.size},`;
  if (entry.code !== undefined) json += `"code":${entry.code},`;
  const shown = preview(entry.payload, entry.hex);
  // Hex, and most text, needs no escaping: JSON.stringify only for what does.
  json += `"preview":${NEEDS_ESCAPE.test(shown) ? JSON.stringify(shown) : `"${shown}"`}`;
  if ((entry.flags & EDITED) !== 0) json += ',"edited":true';
  if ((entry.flags & INJECTED) !== 0) json += ',"injected":true';
  return `${json}}`;
}

/** Characters JSON strings escape: quote, backslash, controls, and surrogates (a lone one is escaped). */
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** Whether a ping/pong payload reads as text (most carry ASCII, some a counter). */
function isPrintable(payload: Buffer): boolean {
  for (const byte of payload) if (byte < 0x20 || byte > 0x7e) return false;
  return true;
}

/**
 * The detail of an entry: its row and payload.
 *
 * @param connection - its connection's id
 * @param entry - a kept entry
 */
export function detailOf(connection: string, entry: Entry): MessageDetail {
  const { data, encoding } = encodeData(entry.payload, entry.binary);
  return { ...rowOf(connection, entry), payload: data, encoding, truncated: entry.kept < entry.size };
}
