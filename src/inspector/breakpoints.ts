/**
 * Breakpoints and the messages they hold. A breakpoint is a side and a regular expression over a
 * data frame's text (binary: over its payload in base64); a matching frame is held by the
 * inspector's stage, which does not call back (so its direction waits, in order) until the frame is
 * released (maybe edited), dropped, or `holdTimeout` passes (then it is released as is). One timer
 * serves every held message: they all wait the same time, so the first held is the first due.
 *
 * @packageDocumentation
 */
import type { Frame } from '../frame.js';
import { isValidUtf8 } from '../protocol/utf8.js';
import type { ProxyRole } from '../proxy/options.js';
import type { EventChannel } from './events.js';
import type { Breakpoint, HeldAction, HeldMessage } from './types.js';

/** Longest pattern source accepted. */
const MAX_PATTERN = 1000;
/** Most breakpoints at once. */
const MAX_BREAKPOINTS = 100;

/** A breakpoint with its compiled expression. */
interface Compiled extends Breakpoint {
  readonly regex: RegExp;
}

/** The breakpoints of an inspector. @internal */
export class Breakpoints {
  private list: Compiled[] = [];
  private nextId = 1;

  constructor(private readonly channel: EventChannel) {}

  /** How many there are. */
  get size(): number {
    return this.list.length;
  }

  /** Their JSON view. */
  all(): Breakpoint[] {
    return this.list.map(({ id, from, pattern, flags }) => ({ id, from, pattern, flags }));
  }

  /**
   * Adds a breakpoint.
   *
   * @throws TypeError for a bad side, pattern or flags (`g` and `y` are refused: they make a
   *   regular expression remember where it stopped)
   */
  add(from: unknown, pattern: unknown, flags: unknown = ''): Breakpoint {
    if (from !== 'client' && from !== 'upstream' && from !== 'both') throw new TypeError("from must be 'client', 'upstream' or 'both'");
    if (typeof pattern !== 'string' || pattern.length > MAX_PATTERN) throw new TypeError(`pattern must be a string of at most ${MAX_PATTERN} characters`);
    if (typeof flags !== 'string' || !/^[dimsuv]*$/.test(flags)) throw new TypeError('flags must be made of d, i, m, s, u, v');
    if (this.list.length >= MAX_BREAKPOINTS) throw new TypeError(`at most ${MAX_BREAKPOINTS} breakpoints`);
    let regex: RegExp;
    try {
      regex = new RegExp(pattern, flags);
    } catch (err) {
      throw new TypeError(`pattern is not a valid regular expression: ${(err as Error).message}`);
    }
    const breakpoint: Compiled = { id: String(this.nextId++), from, pattern, flags, regex };
    this.list = [...this.list, breakpoint];
    this.changed();
    return { id: breakpoint.id, from, pattern, flags };
  }

  /** Removes a breakpoint; false when there is none with that id. */
  remove(id: string): boolean {
    const list = this.list.filter((breakpoint) => breakpoint.id !== id);
    if (list.length === this.list.length) return false;
    this.list = list;
    this.changed();
    return true;
  }

  /**
   * Whether a data frame matches a breakpoint.
   *
   * @param from - the side that sent it
   * @param frame - a text, binary or continuation frame
   * @param binary - whether its message is binary
   */
  matches(from: ProxyRole, frame: Frame, binary: boolean): boolean {
    let subject: string | undefined;
    for (const breakpoint of this.list) {
      if (breakpoint.from !== 'both' && breakpoint.from !== from) continue;
      subject ??= frame.payload.toString(binary ? 'base64' : 'utf8');
      if (breakpoint.regex.test(subject)) return true;
    }
    return false;
  }

  private changed(): void {
    this.channel.publish('breakpoints', this.all());
  }
}

/** What a hold ends with: the frame to pass on (null: dropped), and whether it was edited. */
export interface HoldOutcome {
  frame: Frame | null;
  edited: boolean;
}

/** The new payload of a held message: text, or bytes in base64. */
export interface HoldEdit {
  text?: unknown;
  base64?: unknown;
}

/** Why a hold could not be resolved as asked: `'not-found'`, or a message for a 400 / 409. */
export type ResolveError = { status: 404 | 400 | 409; error: string };

interface Hold {
  readonly message: HeldMessage;
  readonly frame: Frame;
  readonly resolve: (outcome: HoldOutcome) => void;
}

/** The messages breakpoints hold. @internal */
export class Holds {
  /** In the order held, which is also deadline order. */
  private readonly held = new Map<string, Hold>();
  private nextId = 1;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly channel: EventChannel,
    private readonly timeout: number,
    private readonly maxPayload: number,
  ) {}

  /** How many messages are held. */
  get size(): number {
    return this.held.size;
  }

  /** Their JSON view. */
  all(): HeldMessage[] {
    return [...this.held.values()].map((hold) => hold.message);
  }

  /**
   * Holds a frame until it is resolved or times out.
   *
   * @param connection - its connection's id
   * @param from - the side that sent it
   * @param frame - a data frame (its payload is read now, and again when released as is)
   * @param binary - whether its message is binary
   */
  hold(connection: string, from: ProxyRole, frame: Frame, binary: boolean): Promise<HoldOutcome> {
    const id = String(this.nextId++);
    const message: HeldMessage = { id, connection, from, type: binary ? 'binary' : 'text', size: frame.payload.length, deadline: Date.now() + this.timeout };
    if (frame.payload.length <= this.maxPayload) {
      if (binary) message.base64 = frame.payload.toString('base64');
      else message.text = frame.payload.toString('utf8');
    }
    return new Promise<HoldOutcome>((resolve) => {
      this.held.set(id, { message, frame, resolve });
      this.channel.publish('held', message);
      if (this.timer === undefined) this.arm();
    });
  }

  /**
   * Releases (maybe edited) or drops a held message.
   *
   * @param id - the hold's id
   * @param action - `'release'` or `'drop'`
   * @param edit - a new payload for a release: `text`, or `base64`; only for a whole message
   * @returns undefined when done, else why not
   */
  resolve(id: string, action: unknown, edit: HoldEdit = {}): ResolveError | undefined {
    if (action !== 'release' && action !== 'drop') return { status: 400, error: "action must be 'release' or 'drop'" };
    const hold = this.held.get(id);
    if (hold === undefined) return { status: 404, error: `no held message ${id}` };
    if (action === 'drop') {
      this.finish(hold, 'drop', { frame: null, edited: false });
      return undefined;
    }
    if (edit.text === undefined && edit.base64 === undefined) {
      this.finish(hold, 'release', { frame: hold.frame, edited: false });
      return undefined;
    }
    const { frame } = hold;
    // Edited text goes out as a whole message: a fragment's bytes cannot be swapped on their own.
    if (!frame.fin || frame.type === 'continuation') return { status: 409, error: 'a fragment of a message cannot be edited, only released or dropped' };
    let payload: Buffer;
    if (edit.text !== undefined) {
      if (typeof edit.text !== 'string') return { status: 400, error: 'text must be a string' };
      payload = Buffer.from(edit.text, 'utf8');
    } else {
      if (typeof edit.base64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(edit.base64)) return { status: 400, error: 'base64 must be a base64 string' };
      payload = Buffer.from(edit.base64, 'base64');
      // RFC 6455 section 5.6: "the whole message MUST contain valid UTF-8" (the edit is a whole message).
      if (frame.type === 'text' && !isValidUtf8(payload)) return { status: 400, error: 'the bytes of a text message must be valid UTF-8' };
    }
    this.finish(hold, 'release', { frame: { type: frame.type, fin: true, payload, rsv1: false }, edited: true });
    return undefined;
  }

  /** Drops the held messages of a connection that ended. */
  dropConnection(connection: string): void {
    for (const hold of this.held.values()) {
      if (hold.message.connection === connection) this.finish(hold, 'drop', { frame: null, edited: false });
    }
  }

  /** Releases every held message as is, and stops the timer. */
  releaseAll(): void {
    for (const hold of this.held.values()) this.finish(hold, 'release', { frame: hold.frame, edited: false });
  }

  /** Releases, as they are, the messages whose deadline passed; waits for the next. */
  expire(): void {
    this.timer = undefined;
    const now = Date.now();
    for (const hold of this.held.values()) {
      if (hold.message.deadline > now) break;
      this.finish(hold, 'timeout', { frame: hold.frame, edited: false });
    }
    this.arm();
  }

  private finish(hold: Hold, action: HeldAction, outcome: HoldOutcome): void {
    this.held.delete(hold.message.id);
    this.channel.publish('resolved', { id: hold.message.id, action });
    hold.resolve(outcome);
    if (this.held.size === 0 && this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private arm(): void {
    const first = this.held.values().next();
    if (first.done === true) return;
    this.timer = setTimeout(expireHolds, Math.max(0, first.value.message.deadline - Date.now()), this);
    this.timer.unref();
  }
}

function expireHolds(holds: Holds): void {
  holds.expire();
}
