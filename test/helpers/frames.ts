/**
 * Frame fixtures for the stream tests: seeded random valid frame sequences and a comparable view of
 * a frame.
 */
import type { Frame } from '../../src/frame.js';
import type { SeededRandom } from './random.js';

/** A frame as plain data, for deep equality: the payload as hex, `code` only when present. */
export interface FrameView {
  type: Frame['type'];
  fin: boolean;
  rsv1: boolean;
  payload: string;
  code?: number;
}

/** The comparable view of a frame. */
export function view(frame: Frame): FrameView {
  const out: FrameView = { type: frame.type, fin: frame.fin, rsv1: frame.rsv1, payload: frame.payload.toString('hex') };
  if (frame.code !== undefined) out.code = frame.code;
  return out;
}

const CHARS = ['a', 'Z', '0', ' ', 'é', 'ß', '€', '中', '😀', '\u0000', '\u007f', '\u0800', '\uffff'];

/** A random string of 0 to `maxChars` characters of 1 to 4 UTF-8 bytes. */
export function randomText(random: SeededRandom, maxChars: number): string {
  let text = '';
  const n = random.int(0, maxChars);
  for (let i = 0; i < n; i++) text += random.pick(CHARS);
  return text;
}

function randomControl(random: SeededRandom): Frame {
  const type = random.pick(['ping', 'pong'] as const);
  return { type, fin: true, rsv1: false, payload: random.bytes(random.int(0, 125)) };
}

/**
 * A valid frame sequence as a peer may send it: text and binary messages, some fragmented (text
 * fragments cut anywhere, even inside a character), pings and pongs between and inside messages,
 * payload sizes across the 7-bit, 16-bit and 64-bit length forms, and a final close frame.
 *
 * @param random - the generator
 * @param messages - how many data messages
 * @param maxSize - largest data payload
 */
export function randomFrames(random: SeededRandom, messages: number, maxSize = 70000): Frame[] {
  const frames: Frame[] = [];
  for (let m = 0; m < messages; m++) {
    if (random.chance(0.3)) frames.push(randomControl(random));
    const text = random.chance(0.5);
    const sizeClass = random.int(0, 9);
    const size = sizeClass < 5 ? random.int(0, 125) : sizeClass < 9 ? random.int(126, 3000) : random.int(65536, maxSize);
    const payload = text ? Buffer.from(randomText(random, Math.ceil(size / 2)), 'utf8') : random.bytes(size);
    const pieces = random.chance(0.3) ? random.split(payload, 5) : [payload];
    pieces.forEach((piece, i) => {
      if (i > 0 && random.chance(0.3)) frames.push(randomControl(random));
      const type = i === 0 ? (text ? 'text' : 'binary') : 'continuation';
      frames.push({ type, fin: i === pieces.length - 1, rsv1: false, payload: Buffer.from(piece) });
    });
  }
  const close: Frame = { type: 'close', fin: true, rsv1: false, payload: Buffer.from(randomText(random, 20), 'utf8') };
  if (close.payload.length > 123) close.payload = Buffer.alloc(0);
  close.code = random.pick([1000, 1001, 1011, 3000, 4999]);
  frames.push(close);
  return frames;
}
