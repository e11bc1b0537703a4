/**
 * What the inspector shows of a kept frame: an {@link Entry} (a view of a row of its connection's
 * `RowRing`, made when asked for), and the row the table shows, its preview, its JSON and its
 * detail, made from it. A frame that no page looks at costs no object at all: its fields are
 * numbers in the ring, its first bytes a copy in a slab (see slab.ts).
 *
 * @packageDocumentation
 */
import type { FrameType } from '../frame.js';
import { encodeData } from '../record/format.js';
import type { ProxyRole } from '../proxy/options.js';
import type { MessageDetail, MessageRow } from './types.js';

/** Characters of text a preview shows. */
const PREVIEW_CHARS = 120;
/** Bytes of binary a preview shows (as hex). */
const PREVIEW_BYTES = 40;
/** Bytes enough for {@link PREVIEW_CHARS} characters of UTF-8 (4 bytes each at most). */
const PREVIEW_TEXT_BYTES = PREVIEW_CHARS * 4;
/**
 * Bytes a row counts for besides its payload copy (its 32 bytes in the ring, and the views and rows
 * made of it when shown; counted as before the rows were packed, so the bounds keep their meaning).
 */
export const ENTRY_OVERHEAD = 200;

/** Flags of an entry. */
export const EDITED = 1;
export const INJECTED = 2;

/**
 * A kept row, as read from its connection's ring (see `RowRing.at`): a view made on demand. Its
 * payload lies in a slab that is recycled once its rows are let go: read it at once, never keep an
 * entry across turns. @internal
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
  /** How many bytes were kept (all of the payload, or its first bytes). */
  kept = 0;
  /** The buffer holding the kept bytes (a shared slab for small payloads). */
  private store: Buffer = EMPTY;
  /** Where they start in it. */
  private offset = 0;

  /** @internal where the kept bytes lie */
  setBytes(store: Buffer, offset: number): void {
    this.store = store;
    this.offset = offset;
  }

  /** The kept bytes: a view made on demand. */
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
 * How many of a payload's first bytes to keep: at most `max`, text cut at a character boundary
 * so that the kept bytes still decode.
 * @internal
 */
export function keptLength(payload: Buffer, max: number, text: boolean): number {
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
