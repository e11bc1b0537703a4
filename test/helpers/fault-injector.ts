/**
 * A TCP fault injector for tests: a relay on 127.0.0.1 (port 0) put between the proxy and one of its
 * peers. Each accepted connection is relayed to `target` both ways and follows a script of faults
 * per direction, fired when that direction has relayed a given number of bytes:
 *
 * - `reset`: the bytes before the offset are delivered, then both sockets are reset (RST, through
 *   `socket.resetAndDestroy()`), so that both ends see ECONNRESET, in the middle of a frame when the
 *   offset falls inside one;
 * - `stallRead`: the relay stops reading the direction's source (TCP flow control then stops the
 *   sender) for `ms` milliseconds, or for ever;
 * - `stallWrite`: the relay keeps reading but holds what it read (and a FIN) for `ms`, or for ever:
 *   the sender sees its bytes taken, the receiver sees nothing;
 * - `split`: the next `bytes` bytes are written one byte per write, two event-loop turns apart,
 *   with Nagle off, so that the receiver reads them one segment at a time;
 * - `halfClose`: the direction's destination is sent a FIN (`end()`) and what its source sends after
 *   is dropped, while the other direction keeps flowing.
 *
 * Offsets count from the first byte after the HTTP head of the direction (the upgrade request, the
 * 101 response) unless the injector counts from the start (`countFrom: 'start'`): faults then can hit
 * the handshake itself.
 *
 * The relay propagates FIN (sockets allow half-open connections) and resets (an error on one socket
 * resets the other). A stalled-for-ever direction is a black hole: its source is no longer read, so
 * the relay may never see that peer leave; `close()` releases every socket and timer it holds.
 */
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { SeededRandom } from './random.js';

/** A stall's length: milliseconds, or for ever. */
export type StallLength = number | 'forever';

/** One fault of a direction, fired once `at` bytes of it were relayed. */
export type Fault =
  | { readonly kind: 'reset'; readonly at: number }
  | { readonly kind: 'stallRead'; readonly at: number; readonly ms: StallLength }
  | { readonly kind: 'stallWrite'; readonly at: number; readonly ms: StallLength }
  | { readonly kind: 'split'; readonly at: number; readonly bytes: number }
  | { readonly kind: 'halfClose'; readonly at: number };

/** The faults of one relayed connection, per direction, each list in the order of `at`. */
export interface FaultScript {
  /** Bytes from the connecting peer toward the target. */
  readonly forward?: readonly Fault[];
  /** Bytes from the target back toward the connecting peer. */
  readonly backward?: readonly Fault[];
}

/** Where a direction's offsets start: its first byte, or the first byte after its HTTP head. */
export type CountFrom = 'start' | 'body';

/** Options of {@link FaultInjector.start}. */
export interface FaultInjectorOptions {
  /** Where to relay each accepted connection (on 127.0.0.1 unless `host` says otherwise). */
  readonly target: { readonly port: number; readonly host?: string };
  /**
   * The script of the `index`th accepted connection (0-based).
   * @defaultValue no faults (a plain relay)
   */
  readonly script?: (index: number) => FaultScript;
  /**
   * Where offsets start.
   * @defaultValue 'body'
   */
  readonly countFrom?: CountFrom;
}

/** A fault that fired, with its direction. */
export interface FiredFault {
  readonly direction: 'forward' | 'backward';
  readonly fault: Fault;
}

/** Bytes a direction may hold (read, not yet written) before the relay stops reading its source. */
const MAX_QUEUED = 1024 * 1024;

/** "\r\n\r\n": the end of an HTTP head. */
const HEAD_END = [13, 10, 13, 10];

/** One direction of a relayed connection: reads `source`, writes `destination`. */
class Direction {
  /** Bytes read and not yet written. */
  private readonly queue: Buffer[] = [];
  private queued = 0;
  /** Bytes relayed (written, or dropped after a half close) since the offsets' origin. */
  private relayed = 0;
  /** How many bytes of "\r\n\r\n" the last bytes of the HTTP head matched (while not counting yet). */
  private headMatched = 0;
  /** Whether offsets count: from the start, or once the head has passed. */
  private counting: boolean;
  /** The index of the next fault to fire. */
  private next = 0;
  /** Bytes still to write one at a time. */
  private splitLeft = 0;
  /** Why the source is paused: flow control toward a full destination or queue, or a stall. */
  private pausedForFlow = false;
  private stalledRead = false;
  private stalledWrite = false;
  private halfClosed = false;
  private sourceEnded = false;
  private destinationEnded = false;
  private pumping = false;
  private stallTimer: NodeJS.Timeout | undefined;
  private splitImmediate: NodeJS.Immediate | undefined;

  constructor(
    readonly name: 'forward' | 'backward',
    private readonly source: net.Socket,
    private readonly destination: net.Socket,
    private readonly faults: readonly Fault[],
    countFrom: CountFrom,
    private readonly owner: RelayedConnection,
  ) {
    this.counting = countFrom === 'start';
    source.on('data', (chunk: Buffer) => this.onData(chunk));
    source.on('end', () => {
      this.sourceEnded = true;
      this.pump();
    });
    destination.on('drain', () => {
      this.pausedForFlow = false;
      this.pump();
    });
  }

  private onData(chunk: Buffer): void {
    if (this.halfClosed) return; // dropped: the destination was sent its FIN
    this.queue.push(chunk);
    this.queued += chunk.length;
    this.pump();
  }

  /** The next fault's absolute offset in this direction, if one is armed. */
  private nextAt(): number | undefined {
    const fault = this.faults[this.next];
    return this.counting && fault !== undefined ? fault.at : undefined;
  }

  /** Writes what may be written now, firing faults at their offsets. */
  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      this.pumpLoop();
    } finally {
      this.pumping = false;
    }
    this.updateFlow();
  }

  private pumpLoop(): void {
    while (!this.owner.dead && !this.halfClosed) {
      const at = this.nextAt();
      if (at !== undefined && this.relayed >= at) {
        this.fire(this.faults[this.next++]!);
        continue;
      }
      // A stall holds what was read already too, so that nothing past its offset goes through.
      if (this.stalledRead || this.stalledWrite || this.pausedForFlow || this.splitImmediate !== undefined) return;
      const chunk = this.queue[0];
      if (chunk === undefined) {
        if (this.sourceEnded && !this.destinationEnded) {
          this.destinationEnded = true;
          this.destination.end();
        }
        return;
      }
      let length = chunk.length;
      if (!this.counting) length = Math.min(length, this.headLength(chunk));
      if (at !== undefined) length = Math.min(length, at - this.relayed);
      if (this.splitLeft > 0) length = 1;
      const piece = chunk.subarray(0, length);
      if (length === chunk.length) this.queue.shift();
      else this.queue[0] = chunk.subarray(length);
      this.queued -= length;
      if (this.counting) this.relayed += length;
      else this.advanceHead(piece);
      const more = this.destination.write(piece);
      if (this.splitLeft > 0) {
        this.splitLeft--;
        this.pauseForSplit();
        return;
      }
      if (!more) {
        this.pausedForFlow = true;
        return;
      }
    }
  }

  /** How many bytes of `chunk` still belong to the HTTP head (all of it while its end is unseen). */
  private headLength(chunk: Buffer): number {
    let matched = this.headMatched;
    for (let i = 0; i < chunk.length; i++) {
      matched = chunk[i] === HEAD_END[matched] ? matched + 1 : chunk[i] === 13 ? 1 : 0;
      if (matched === 4) return i + 1;
    }
    return chunk.length;
  }

  private advanceHead(piece: Buffer): void {
    for (const byte of piece) {
      this.headMatched = byte === HEAD_END[this.headMatched] ? this.headMatched + 1 : byte === 13 ? 1 : 0;
      if (this.headMatched === 4) {
        this.counting = true;
        return;
      }
    }
  }

  private fire(fault: Fault): void {
    this.owner.fired.push({ direction: this.name, fault });
    switch (fault.kind) {
      case 'reset':
        // What was written before is handed to the kernel first, so that it reaches the peer.
        this.owner.dead = true;
        this.destination.write(Buffer.alloc(0), () => this.owner.reset());
        return;
      case 'split':
        this.splitLeft = fault.bytes;
        // Apart from what went before too.
        if (fault.bytes > 0) this.pauseForSplit();
        return;
      case 'halfClose':
        this.halfClosed = true;
        this.queue.length = 0;
        this.queued = 0;
        if (!this.destinationEnded) {
          this.destinationEnded = true;
          this.destination.end();
        }
        return;
      case 'stallRead':
      case 'stallWrite':
        if (fault.kind === 'stallRead') this.stalledRead = true;
        else this.stalledWrite = true;
        if (fault.ms !== 'forever') {
          this.stallTimer = setTimeout(() => {
            this.stallTimer = undefined;
            this.stalledRead = false;
            this.stalledWrite = false;
            this.pump();
          }, fault.ms);
        }
        return;
    }
  }

  /**
   * Waits two event-loop turns before the next write: one is not enough (a write made in a poll
   * phase is followed by the same turn's check phase, before the receiver's next poll), two leave a
   * whole poll phase in between, in which the receiver reads the byte alone.
   */
  private pauseForSplit(): void {
    this.splitImmediate = setImmediate(() => {
      this.splitImmediate = setImmediate(() => {
        this.splitImmediate = undefined;
        this.pump();
      });
    });
  }

  /** Pauses the source while a stall, a full destination or a long queue says so. */
  private updateFlow(): void {
    if (this.owner.dead || this.source.destroyed) return;
    const hold = this.stalledRead || (!this.halfClosed && (this.pausedForFlow || this.queued > MAX_QUEUED));
    if (hold) this.source.pause();
    else this.source.resume();
  }

  /** Clears the direction's timers (the connection is gone). */
  release(): void {
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    if (this.splitImmediate !== undefined) clearImmediate(this.splitImmediate);
    this.splitImmediate = undefined;
    this.queue.length = 0;
  }
}

/** One connection through the injector. */
export class RelayedConnection {
  /** The faults that fired so far, in order. */
  readonly fired: FiredFault[] = [];
  /** Resolves once both sockets closed and the timers were released. */
  readonly closed: Promise<void>;
  /** Set once the connection was reset or released: nothing more is relayed. */
  dead = false;
  private readonly directions: Direction[];

  /**
   * @param index - its 0-based rank among the injector's connections
   * @param script - its faults
   * @param source - the accepted socket (the connecting peer)
   * @param target - the socket to the target
   */
  constructor(
    readonly index: number,
    readonly script: FaultScript,
    readonly source: net.Socket,
    readonly target: net.Socket,
    countFrom: CountFrom,
  ) {
    for (const socket of [source, target]) {
      socket.setNoDelay(true);
      // An error on one end is passed on as a reset of the other.
      socket.on('error', () => this.reset());
    }
    this.directions = [
      new Direction('forward', source, target, script.forward ?? [], countFrom, this),
      new Direction('backward', target, source, script.backward ?? [], countFrom, this),
    ];
    // Not events.once(): it rejects on 'error', and an error is how a reset ends.
    const closeOf = (socket: net.Socket): Promise<void> => new Promise((resolve) => socket.once('close', () => resolve()));
    this.closed = Promise.all([closeOf(source), closeOf(target)]).then(() => this.release());
  }

  /** Whether both sockets are destroyed. */
  get destroyed(): boolean {
    return this.source.destroyed && this.target.destroyed;
  }

  /** Whether a fault that can end the connection without a close handshake fired (reset, half close, endless stall). */
  get broken(): boolean {
    return this.fired.some(({ fault }) => fault.kind === 'reset' || fault.kind === 'halfClose' || ('ms' in fault && fault.ms === 'forever'));
  }

  /** Resets both sockets (RST), once. */
  reset(): void {
    this.dead = true;
    for (const socket of [this.source, this.target]) {
      if (socket.destroyed) continue;
      // A socket still connecting cannot be reset yet: destroy it.
      if (socket.connecting) socket.destroy();
      else socket.resetAndDestroy();
    }
    this.release();
  }

  /** Destroys both sockets and clears the timers. */
  destroy(): void {
    this.dead = true;
    this.source.destroy();
    this.target.destroy();
    this.release();
  }

  private release(): void {
    for (const direction of this.directions) direction.release();
  }
}

/** A running fault injector: see the module's description. */
export class FaultInjector {
  /** Connections accepted so far, in order. */
  readonly connections: RelayedConnection[] = [];

  private constructor(
    private readonly server: net.Server,
    /** The port it listens on (127.0.0.1). */
    readonly port: number,
  ) {}

  /**
   * Starts an injector on 127.0.0.1, port 0.
   *
   * @param options - see {@link FaultInjectorOptions}
   */
  static async start(options: FaultInjectorOptions): Promise<FaultInjector> {
    const countFrom = options.countFrom ?? 'body';
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const injector = new FaultInjector(server, (server.address() as AddressInfo).port);
    server.on('connection', (source: net.Socket) => {
      const index = injector.connections.length;
      const target = net.connect({ port: options.target.port, host: options.target.host ?? '127.0.0.1', allowHalfOpen: true });
      const connection = new RelayedConnection(index, options.script?.(index) ?? {}, source, target, countFrom);
      injector.connections.push(connection);
      source.resume();
    });
    return injector;
  }

  /** Resolves once every connection accepted so far has closed. */
  async settled(): Promise<void> {
    await Promise.all(this.connections.map((c) => c.closed));
  }

  /** Destroys every connection, releases their timers and stops listening. */
  async close(): Promise<void> {
    for (const connection of this.connections) connection.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.settled();
  }
}

/** Options of {@link randomScript}. */
export interface RandomScriptOptions {
  /** Chance that a direction has a fault at all. @defaultValue 0.5 */
  readonly faultChance?: number;
  /** Largest offset a fault is placed at. @defaultValue 4096 */
  readonly maxAt?: number;
  /** Longest timed stall, in ms. @defaultValue 300 */
  readonly maxStallMs?: number;
  /** Chance that a stall is for ever. @defaultValue 0.2 */
  readonly foreverChance?: number;
}

/** A random fault of one direction at offset `at`. */
function randomFault(random: SeededRandom, at: number, options: Required<RandomScriptOptions>): Fault {
  const ms = (): StallLength => (random.chance(options.foreverChance) ? 'forever' : random.int(1, options.maxStallMs));
  switch (random.int(0, 4)) {
    case 0: return { kind: 'reset', at };
    case 1: return { kind: 'stallRead', at, ms: ms() };
    case 2: return { kind: 'stallWrite', at, ms: ms() };
    case 3: return { kind: 'split', at, bytes: random.int(1, 64) };
    default: return { kind: 'halfClose', at };
  }
}

/**
 * A seeded script: each direction gets, with `faultChance`, one or two faults (a split may be
 * followed by another fault) at random offsets below `maxAt`.
 *
 * @param random - the run's generator
 * @param options - see {@link RandomScriptOptions}
 */
export function randomScript(random: SeededRandom, options: RandomScriptOptions = {}): FaultScript {
  const resolved: Required<RandomScriptOptions> = {
    faultChance: options.faultChance ?? 0.5,
    maxAt: options.maxAt ?? 4096,
    maxStallMs: options.maxStallMs ?? 300,
    foreverChance: options.foreverChance ?? 0.2,
  };
  const direction = (): Fault[] => {
    if (!random.chance(resolved.faultChance)) return [];
    const first = randomFault(random, random.int(0, resolved.maxAt), resolved);
    if (first.kind !== 'split' || !random.chance(0.5)) return [first];
    return [first, randomFault(random, first.at + first.bytes + random.int(0, resolved.maxAt), resolved)];
  };
  return { forward: direction(), backward: direction() };
}

/** Describes a script in one line, for failure messages: `forward: reset@120; backward: -`. */
export function describeScript(script: FaultScript): string {
  const one = (fault: Fault): string => {
    switch (fault.kind) {
      case 'split': return `split(${fault.bytes})@${fault.at}`;
      case 'stallRead':
      case 'stallWrite': return `${fault.kind}(${fault.ms})@${fault.at}`;
      default: return `${fault.kind}@${fault.at}`;
    }
  };
  const list = (faults: readonly Fault[] | undefined): string => (faults === undefined || faults.length === 0 ? '-' : faults.map(one).join(', '));
  return `forward: ${list(script.forward)}; backward: ${list(script.backward)}`;
}
