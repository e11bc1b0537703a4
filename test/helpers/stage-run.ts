/**
 * Helpers of the stage specs: run frames through a stage and collect what comes out, check that a
 * frame sequence is one a sender may send, and wait.
 */
import type { Frame } from '../../src/frame.js';
import { checkSendable } from '../../src/protocol/encode.js';
import type { Stage } from '../../src/transforms/stage.js';

/** What came out of a stage. */
export interface StageRun {
  out: Frame[];
  /** The error the stage failed with, if it did. */
  error: Error | undefined;
}

/**
 * Writes `frames` into `stage` (all at once, then end) and collects its output until it ends or
 * fails.
 */
export function runStage(stage: Stage, frames: readonly Frame[]): Promise<StageRun> {
  const out: Frame[] = [];
  const s = stage as import('node:stream').Duplex;
  return new Promise<StageRun>((resolve) => {
    s.on('data', (frame: Frame) => out.push(frame));
    s.on('end', () => resolve({ out, error: undefined }));
    s.on('error', (error: Error) => resolve({ out, error }));
    for (const frame of frames) s.write(frame);
    s.end();
  });
}

/**
 * The first rule of RFC 6455 section 5.4 / 5.5 the sequence breaks (continuation outside a
 * message, text or binary inside one, unfinished control frame, RSV1 off a message's first frame),
 * or undefined when it is valid. An unfinished message at the end counts as a violation.
 */
export function sequenceError(frames: readonly Frame[]): string | undefined {
  let open = false;
  for (const [i, frame] of frames.entries()) {
    try {
      checkSendable(frame, open, true);
    } catch (err) {
      return `frame ${i}: ${(err as Error).message}`;
    }
    if (frame.type === 'text' || frame.type === 'binary' || frame.type === 'continuation') open = !frame.fin;
  }
  return open ? 'the last message is not finished' : undefined;
}

/** The data messages of a valid sequence, each as its type and its whole payload. */
export function messagesOf(frames: readonly Frame[]): { type: string; payload: Buffer }[] {
  const messages: { type: string; payload: Buffer }[] = [];
  let parts: Buffer[] = [];
  let type = '';
  for (const frame of frames) {
    if (frame.type === 'close' || frame.type === 'ping' || frame.type === 'pong') continue;
    if (frame.type !== 'continuation') type = frame.type;
    parts.push(frame.payload);
    if (frame.fin) {
      messages.push({ type, payload: Buffer.concat(parts) });
      parts = [];
    }
  }
  return messages;
}

/** Resolves after `ms` real milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

