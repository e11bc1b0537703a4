/**
 * UTF-8 validation (RFC 3629), whole and incremental.
 *
 * Whole buffers go to Node's native `buffer.isUtf8`. A fragmented text message is checked one
 * fragment at a time: a character cut by a fragment boundary is kept (at most 3 bytes) until the
 * next fragment completes it, and a sequence that can never become valid fails at once.
 *
 * @packageDocumentation
 */
import { isUtf8 } from 'node:buffer';

/**
 * Tells whether `bytes[start..end)` is a proper prefix of some valid UTF-8 character: a lead byte
 * followed by fewer continuation bytes than it needs, each in the range its position allows
 * (no overlong forms, no surrogates, nothing above U+10FFFF).
 */
function isCharPrefix(bytes: Buffer, start: number, end: number): boolean {
  const lead = bytes[start]!;
  let need: number;
  if (lead >= 0xc2 && lead <= 0xdf) need = 1;
  else if (lead >= 0xe0 && lead <= 0xef) need = 2;
  else if (lead >= 0xf0 && lead <= 0xf4) need = 3;
  else return false;
  if (end - start > need) return false;
  for (let i = start + 1; i < end; i++) {
    const b = bytes[i]!;
    let lo = 0x80, hi = 0xbf;
    if (i === start + 1) {
      if (lead === 0xe0) lo = 0xa0;
      else if (lead === 0xed) hi = 0x9f;
      else if (lead === 0xf0) lo = 0x90;
      else if (lead === 0xf4) hi = 0x8f;
    }
    if (b < lo || b > hi) return false;
  }
  return true;
}

/**
 * Tells whether a whole buffer is valid UTF-8.
 *
 * @param bytes - the bytes to check
 */
export function isValidUtf8(bytes: Buffer): boolean {
  return bytes.length === 0 || isUtf8(bytes);
}

/**
 * Validates one UTF-8 text across fragments. Call {@link Utf8Validator.write} per fragment and
 * {@link Utf8Validator.end} after the last one; either returns false as soon as the text can no
 * longer be valid.
 */
export class Utf8Validator {
  private readonly pending = Buffer.alloc(4);
  private pendingLength = 0;

  /**
   * Checks the next fragment.
   *
   * @param bytes - the fragment (not modified, not retained)
   * @returns false if the text seen so far cannot be the start of valid UTF-8
   */
  write(bytes: Buffer): boolean {
    let start = 0;
    if (this.pendingLength > 0) {
      // Complete the character cut by the previous fragment, one byte at a time.
      while (start < bytes.length) {
        this.pending[this.pendingLength++] = bytes[start++]!;
        if (isUtf8(this.pending.subarray(0, this.pendingLength))) {
          this.pendingLength = 0;
          break;
        }
        if (!isCharPrefix(this.pending, 0, this.pendingLength)) return false;
      }
      if (this.pendingLength > 0) return true;
    }
    const end = bytes.length;
    // Find where the last character starts; if it is incomplete, keep it for the next fragment.
    let tail = end;
    for (let i = end - 1; i >= start && i >= end - 3; i--) {
      const b = bytes[i]!;
      if (b < 0x80) break;
      if (b >= 0xc0) {
        const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
        if (end - i < need) tail = i;
        break;
      }
    }
    if (tail > start && !isUtf8(bytes.subarray(start, tail))) return false;
    if (tail < end) {
      if (!isCharPrefix(bytes, tail, end)) return false;
      bytes.copy(this.pending, 0, tail, end);
      this.pendingLength = end - tail;
    }
    return true;
  }

  /**
   * Ends the text.
   *
   * @returns false if the last fragment ended inside a character; the validator is reset either way
   */
  end(): boolean {
    const complete = this.pendingLength === 0;
    this.pendingLength = 0;
    return complete;
  }

  /** Forgets any cut character, ready for a new text. */
  reset(): void {
    this.pendingLength = 0;
  }
}
