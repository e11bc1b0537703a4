/**
 * Masking (RFC 6455 section 5.3): XOR of the payload with a 4-byte key, with the optional native
 * `bufferutil` addon for large buffers and a pure-JS fallback that is always available.
 *
 * The thresholds and the key pool follow ws (lib/buffer-util.js, lib/sender.js, MIT license): below
 * a few dozen bytes the call into the addon costs more than the loop it saves.
 *
 * @packageDocumentation
 */
import { randomFillSync } from 'node:crypto';
import { createRequire } from 'node:module';

/** Native masking functions of the `bufferutil` package. */
interface BufferUtil {
  mask(source: Buffer, mask: Buffer, output: Buffer, offset: number, length: number): void;
  unmask(buffer: Buffer, mask: Buffer): void;
}

/** Fills a 4-byte buffer with a fresh masking key. */
export type GenerateMask = (key: Buffer) => void;

function loadBufferUtil(): BufferUtil | undefined {
  if (process.env.WSP_NO_BUFFER_UTIL) return undefined;
  try {
    return createRequire(import.meta.url)('bufferutil') as BufferUtil;
  } catch {
    return undefined;
  }
}

const native = loadBufferUtil();
const NATIVE_UNMASK_MIN = 32;
const NATIVE_MASK_MIN = 48;

/** Whether the native `bufferutil` addon is in use (false when absent or `WSP_NO_BUFFER_UTIL` is set). */
export const hasNativeMask = native !== undefined;

/** From this many bytes the JS fallback XORs 32 bits at a time (a typed-array view costs ~50 ns). */
const WORD_MIN = 128;
const keyBytes = new Uint8Array(4);
/** `keyBytes` as one 32-bit word in memory order, whatever the platform's endianness. */
const keyWord = new Int32Array(keyBytes.buffer);

/**
 * XORs `target[start, start + n)` in place with the key, key byte 0 at `start`: byte by byte up to
 * the first 4-byte-aligned address, then 32 bits at a time, then the last bytes. Needs n >= 3.
 */
function xorWords(target: Buffer, start: number, n: number, key: Buffer): void {
  const end = start + n;
  let i = start;
  const aligned = start + ((4 - ((target.byteOffset + start) & 3)) & 3);
  for (; i < aligned; i++) target[i] ^= key[(i - start) & 3]!;
  const phase = i - start;
  keyBytes[0] = key[phase & 3]!;
  keyBytes[1] = key[(phase + 1) & 3]!;
  keyBytes[2] = key[(phase + 2) & 3]!;
  keyBytes[3] = key[(phase + 3) & 3]!;
  const word = keyWord[0]!;
  const words = (end - i) >>> 2;
  const view = new Int32Array(target.buffer, target.byteOffset + i, words);
  const unrolled = words & ~3;
  let w = 0;
  for (; w < unrolled; w += 4) {
    view[w] ^= word;
    view[w + 1] ^= word;
    view[w + 2] ^= word;
    view[w + 3] ^= word;
  }
  for (; w < words; w++) view[w] ^= word;
  for (i += words * 4; i < end; i++) target[i] ^= key[(i - start) & 3]!;
}

/**
 * Masks `source` into `output` at `offset` with the pure-JS loop.
 *
 * @param source - bytes to mask (not modified)
 * @param key - the 4-byte masking key
 * @param output - where the masked bytes go
 * @param offset - the index in `output` of the first masked byte
 */
export function maskJs(source: Buffer, key: Buffer, output: Buffer, offset: number): void {
  const n = source.length;
  if (n >= WORD_MIN) {
    // A copy (memmove) then 32-bit XORs beat the byte loop several times over on long payloads.
    output.set(source, offset);
    xorWords(output, offset, n, key);
    return;
  }
  const k0 = key[0]!, k1 = key[1]!, k2 = key[2]!, k3 = key[3]!;
  const whole = n & ~3;
  let i = 0;
  for (; i < whole; i += 4) {
    output[offset + i] = source[i]! ^ k0;
    output[offset + i + 1] = source[i + 1]! ^ k1;
    output[offset + i + 2] = source[i + 2]! ^ k2;
    output[offset + i + 3] = source[i + 3]! ^ k3;
  }
  for (; i < n; i++) output[offset + i] = source[i]! ^ key[i & 3]!;
}

/**
 * Unmasks `buffer` in place with the pure-JS loop.
 *
 * @param buffer - masked bytes, replaced by the unmasked bytes
 * @param key - the 4-byte masking key
 */
export function unmaskJs(buffer: Buffer, key: Buffer): void {
  if (buffer.length >= WORD_MIN) xorWords(buffer, 0, buffer.length, key);
  else maskJs(buffer, key, buffer, 0);
}

/**
 * Masks `source` into `output` at `offset`, natively when it pays.
 *
 * @param source - bytes to mask (not modified)
 * @param key - the 4-byte masking key
 * @param output - where the masked bytes go
 * @param offset - the index in `output` of the first masked byte
 */
export function mask(source: Buffer, key: Buffer, output: Buffer, offset: number): void {
  if (native !== undefined && source.length >= NATIVE_MASK_MIN) {
    native.mask(source, key, output, offset, source.length);
  } else {
    maskJs(source, key, output, offset);
  }
}

/**
 * Unmasks `buffer` in place, natively when it pays.
 *
 * @param buffer - masked bytes, replaced by the unmasked bytes
 * @param key - the 4-byte masking key
 */
export function unmask(buffer: Buffer, key: Buffer): void {
  if (native !== undefined && buffer.length >= NATIVE_UNMASK_MIN) native.unmask(buffer, key);
  else unmaskJs(buffer, key);
}

/**
 * Size of a scratch piece: a payload that may not be masked in place (user code may hold it) is
 * masked into pieces of this size, each written to the socket as it takes them (see
 * {@link takeMaskPiece}), instead of into one fresh buffer of its whole size.
 */
export const MASK_PIECE_SIZE = 64 * 1024;
/** Most free pieces kept for reuse, process-wide (1 MiB); pieces released beyond it are dropped. */
const MAX_FREE_PIECES = 16;
const freePieces: Buffer[] = [];

/**
 * A scratch buffer of {@link MASK_PIECE_SIZE} bytes to mask into: a reused one when one is free.
 * A fresh buffer of a large payload's size costs more than the masking itself (its pages are
 * faulted in, and each one adds to the external memory that drives V8's full collections); a
 * reused piece costs neither.
 *
 * @returns a piece, the caller's until it gives it back with {@link releaseMaskPiece}
 */
export function takeMaskPiece(): Buffer {
  // Outside Node's shared pool, and of one size, so that any free piece fits any use.
  return freePieces.pop() ?? Buffer.allocUnsafeSlow(MASK_PIECE_SIZE);
}

/**
 * Gives a piece from {@link takeMaskPiece} back for reuse. Call it only once nothing will read the
 * piece again: for a piece written to a socket, from that write's callback.
 *
 * @param piece - a piece from {@link takeMaskPiece}, given back once
 */
export function releaseMaskPiece(piece: Buffer): void {
  if (freePieces.length < MAX_FREE_PIECES) freePieces.push(piece);
}

const POOL_SIZE = 8 * 1024;
let pool: Buffer | undefined;
let poolOffset = POOL_SIZE;

/**
 * The key that masks a payload from byte `offset` on, as bytes `0..3` of a piece: `key` rotated by
 * `offset % 4`, since byte `i` of a payload is masked with key byte `i % 4` (RFC 6455 section 5.3).
 *
 * @param key - the frame's 4-byte masking key
 * @param offset - index in the payload of the piece's first byte
 * @param out - where the rotated key is written (4 bytes, not `key` itself)
 */
export function rotateKey(key: Buffer, offset: number, out: Buffer): void {
  out[0] = key[offset & 3]!;
  out[1] = key[(offset + 1) & 3]!;
  out[2] = key[(offset + 2) & 3]!;
  out[3] = key[(offset + 3) & 3]!;
}

/**
 * The default {@link GenerateMask}: 4 bytes from a pool refilled by `randomFillSync` 8 KiB at a time,
 * so a strong random key costs one system call per 2048 frames.
 *
 * @param key - a 4-byte buffer to fill
 */
export function randomMask(key: Buffer): void {
  // Lazily allocated: server-role writers never mask, so most processes never need it.
  if (poolOffset === POOL_SIZE) {
    if (pool === undefined) pool = Buffer.allocUnsafe(POOL_SIZE);
    randomFillSync(pool, 0, POOL_SIZE);
    poolOffset = 0;
  }
  key[0] = pool![poolOffset]!;
  key[1] = pool![poolOffset + 1]!;
  key[2] = pool![poolOffset + 2]!;
  key[3] = pool![poolOffset + 3]!;
  poolOffset += 4;
}
