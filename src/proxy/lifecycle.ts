/**
 * The life of one proxied connection after its handshakes: the two directions, the close handshake
 * as one state per side, one deadline at a time, and one table from each way a connection can end to
 * what each side is sent and what the summary says.
 *
 * @packageDocumentation
 */
import type { Duplex } from 'node:stream';
import { pipeline } from 'readable-stream';
import { type ErrorCode, HandshakeError, WebSocketProxyError, isWebSocketProxyError } from '../errors.js';
import { type Frame, closeFrame } from '../frame.js';
import type { DeflateParameters } from '../protocol/deflate.js';
import { wirePayload } from '../protocol/encode.js';
import { AggregateTransform, aggregate } from '../transforms/aggregate.js';
import { FrameStage, type Stage, type StageContext, setStageContext, toError } from '../transforms/stage.js';
import { DeflateHop, directionCompression } from './deflate-hop.js';
import { type HeldSocket, type HeldSocketOwner, holdSocket, releaseSocket, watchSocket } from './dormant.js';
import { Forwarder } from './forwarder.js';
import { Link, type LinkOwner } from './link.js';
import { InflateStage } from './inflate-stage.js';
import { describeFrame } from './log.js';
import type { ProxyRole, ResolvedProxyOptions } from './options.js';
import { type CloseInfo, Side, type SideOwner, type SideSummary, emptySummary } from './side.js';
import type { WebSocketProxy } from './websocket-proxy.js';

/** What `execute()` resolves with once both connections are closed. */
export interface ProxySummary {
  /**
   * Who started the end: the side whose close frame or connection loss came first, or `'proxy'`
   * (`close()`, `destroy()`, a limit, a protocol violation, a stage's policy, an error, a timeout).
   * A side given up by keepalive (`WSP_ERR_KEEPALIVE_TIMEOUT`) is the side that closed first.
   */
  closedBy: ProxyRole | 'proxy' | undefined;
  /**
   * The coded error that ended the connection: a side's protocol violation or limit
   * (`WSP_ERR_INVALID_UTF8`, `WSP_ERR_FRAME_TOO_LARGE`...), a stage's policy close
   * (`WSP_ERR_VALIDATION_FAILED`...), user code that failed (`WSP_ERR_STAGE_FAILED` with the thrown
   * error as `cause`, or `WSP_ERR_INVALID_FRAME` for a frame that could not be sent), a lost
   * connection (`WSP_ERR_CONNECTION_LOST`, `WSP_ERR_TRUNCATED_FRAME`, `WSP_ERR_SEND_TIMEOUT`,
   * `WSP_ERR_KEEPALIVE_TIMEOUT`), a timeout (`WSP_ERR_IDLE_TIMEOUT`, `WSP_ERR_CLOSE_TIMEOUT`), or
   * `destroy()` (`WSP_ERR_DESTROYED`, unless one of the others came first). `undefined` for a clean
   * close (a close handshake on both sides, also one started by `close()`).
   */
  error: WebSocketProxyError | undefined;
  /** The client side. */
  client: SideSummary;
  /** The upstream side. */
  upstream: SideSummary;
}

/** The ways a running connection ends: the rows of {@link ENDINGS}. */
export type Ending = 'clean' | 'limit' | 'protocol' | 'policy' | 'user' | 'lost' | 'sendTimeout' | 'idle' | 'linger' | 'destroyed';

/**
 * What a side is sent when the connection ends one way: nothing, the error's own close code, a fixed
 * code, or the close frame its peer sent (when the stages did not pass it on), else 1001.
 */
export type Reply = 'nothing' | 'errorCode' | 1001 | 1011 | 'peerClose';

/** One row of {@link ENDINGS}. */
export interface EndingRule {
  /** What the side that caused the end is sent (the sender of the offending frame, the lost side). */
  readonly source: Reply;
  /** What its peer is sent (with no source, e.g. a timeout: what both sides are sent). */
  readonly peer: Reply;
  /**
   * Whether the close replies are awaited (lingering), or both connections end as soon as the close
   * frames went (with `relayFirst`: once the source's went).
   */
  readonly graceful: boolean;
  /**
   * Whether the source is sent its close only after what its peer already sent toward it: the proxy
   * stops reading the source at once, sends the peer its close, keeps relaying the peer's frames to
   * the source until the peer's close reply (or `lingeringTimeout`, or the lingering deadlines), and
   * only then sends the source its close. As without a proxy, the source still gets, say, the echo
   * of its last valid message before its close frame.
   */
  readonly relayFirst: boolean;
  /**
   * Whether both sockets are destroyed at once instead of ended (no close frame, no TCP close
   * handshake, no `lingeringTimeout`).
   */
  readonly destroy: boolean;
  /** What the summary's `closedBy` says, unless an earlier close already set it. */
  readonly closedBy: 'source' | 'proxy';
  /** The summary's `error`: none, the error that caused it, or this code. */
  readonly error: 'none' | 'cause' | ErrorCode;
}

/**
 * How a running connection ends. `docs/architecture.md` shows the same table.
 *
 * - `clean`: both sides sent and were sent a close frame (forwarded, or from `close()`).
 * - `limit`, `protocol`: a side broke a limit (1009 "Payload Too Large") or the protocol (1002,
 *   1007); `policy`: a stage refused a side's message (the error's 1007, 1008 or 1009). The side is
 *   no longer read; its peer's frames already on their way still reach it before its close
 *   (`relayFirst`).
 * - `user`: `onFrame` or a stage threw, rejected, ended early, or made a frame that cannot be sent.
 * - `lost`, `sendTimeout`: a side's connection went without a close handshake, or it sent nothing
 *   for `pongTimeout` after a keepalive ping (its socket is then destroyed), or it took no bytes for
 *   `sendTimeout`.
 * - `idle`: no frame for `idleTimeout`; `linger`: a close reply did not come in time (or a stage held
 *   a close frame back past `lingeringTime`).
 * - `destroyed`: `destroy()`: both sockets are destroyed at once.
 */
export const ENDINGS: Readonly<Record<Ending, EndingRule>> = {
  clean: { source: 'nothing', peer: 'nothing', graceful: true, relayFirst: false, destroy: false, closedBy: 'source', error: 'none' },
  limit: { source: 'errorCode', peer: 1001, graceful: false, relayFirst: true, destroy: false, closedBy: 'proxy', error: 'cause' },
  protocol: { source: 'errorCode', peer: 1001, graceful: false, relayFirst: true, destroy: false, closedBy: 'proxy', error: 'cause' },
  policy: { source: 'errorCode', peer: 1001, graceful: false, relayFirst: true, destroy: false, closedBy: 'proxy', error: 'cause' },
  user: { source: 1011, peer: 1011, graceful: false, relayFirst: false, destroy: false, closedBy: 'proxy', error: 'cause' },
  lost: { source: 'nothing', peer: 1001, graceful: false, relayFirst: false, destroy: false, closedBy: 'source', error: 'cause' },
  sendTimeout: { source: 'nothing', peer: 1001, graceful: false, relayFirst: false, destroy: false, closedBy: 'source', error: 'cause' },
  idle: { source: 1001, peer: 1001, graceful: true, relayFirst: false, destroy: false, closedBy: 'proxy', error: 'WSP_ERR_IDLE_TIMEOUT' },
  linger: { source: 'peerClose', peer: 'peerClose', graceful: false, relayFirst: false, destroy: false, closedBy: 'proxy', error: 'WSP_ERR_CLOSE_TIMEOUT' },
  destroyed: { source: 'nothing', peer: 'nothing', graceful: false, relayFirst: false, destroy: true, closedBy: 'proxy', error: 'WSP_ERR_DESTROYED' },
};

/** The longest delay `setTimeout` takes; a longer one would fire at once (TimeoutOverflowWarning). */
const MAX_TIMER_DELAY = 2 ** 31 - 1;

/** Close codes a stage's `WebSocketProxyError` may close its sender with ("policy closes"). */
const POLICY_CLOSE_CODES: ReadonlySet<number> = new Set([1007, 1008, 1009]);

/**
 * Where the connection is:
 * - `connecting`: handshakes under way, `execute()` not called;
 * - `dormant`: `execute()` ran, no byte came from either side yet, and no user code is on either
 *   direction: the sides are not built, the sockets are only watched (see dormant.ts); the first
 *   byte, end or close, a deadline, or a call that needs a side builds them and the phase is `open`;
 * - `open`: both directions run, no close frame yet;
 * - `closing`: a close frame was sent or received: replies are awaited within `lingeringTime`;
 * - `ending`: both writers ended, the sockets are given `lingeringTimeout` to close;
 * - `done`: both sockets closed, `execute()` settled.
 */
type Phase = 'connecting' | 'dormant' | 'open' | 'closing' | 'ending' | 'done';

const kStageSide = Symbol('stageSide');
const kOriginalWrite = Symbol('originalWrite');

interface TaggedStage {
  [kStageSide]: Side;
  [kOriginalWrite]?: (...args: unknown[]) => boolean;
}

function closeInfo(frame: Frame): CloseInfo {
  return { code: frame.code, reason: frame.payload.toString('utf8') };
}

let lastId = 0;

/**
 * The connection behind a `WebSocketProxy`: its two {@link Side}s, its directions and its state
 * machine. The proxy runs the handshakes and hands the sockets over with {@link Lifecycle.attach}.
 */
export class Lifecycle implements SideOwner, HeldSocketOwner, LinkOwner {
  private client: Side | undefined;
  private upstream: Side | undefined;
  /** The sockets handed over whose sides are not built yet (see {@link Lifecycle.attach}). */
  private held: HeldSocket[] = [];
  private phase: Phase = 'connecting';
  private closedBy: ProxyRole | 'proxy' | undefined;
  private error: WebSocketProxyError | undefined;
  private settle: ((summary: ProxySummary) => void) | undefined;
  /** What `execute()` returns, once `run()` or `destroy()` made it. */
  private finished: Promise<ProxySummary> | undefined;
  /** Whether `destroy()` was called. */
  private wasDestroyed = false;
  private lastActivity = 0;
  /** When the `closing` phase began (ms since the epoch). */
  private closingSince = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Infinity;

  /** A new connection id, unique in this process. */
  static nextId(): string {
    return String(++lastId);
  }

  /**
   * @param id - the connection's id (see {@link Lifecycle.nextId})
   * @param proxy - the public object, handed to `onFrame` and to stages
   * @param options - the proxy's resolved options
   * @param stages - each direction's user stages, already claimed for this proxy
   */
  constructor(
    readonly id: string,
    private readonly proxy: WebSocketProxy,
    private readonly options: ResolvedProxyOptions<WebSocketProxy>,
    private readonly stages: Readonly<Record<ProxyRole, readonly Stage[]>>,
  ) {}

  /**
   * Takes over a side's socket once its handshake completed.
   *
   * @param role - which side
   * @param socket - its socket
   * @param head - bytes read past the handshake
   * @param deflate - the permessage-deflate parameters the hop negotiated, if any
   * @returns the side
   * @throws HandshakeError `WSP_ERR_DESTROYED` after `destroy()` (the socket is destroyed)
   */
  attach(role: ProxyRole, socket: Duplex, head: Buffer, deflate?: DeflateParameters): void {
    if (this.wasDestroyed) {
      // A handshake that completed after destroy(): the socket goes at once.
      socket.destroy();
      throw new HandshakeError('WSP_ERR_DESTROYED', `the ${role} handshake completed after destroy()`);
    }
    // Its side is built when something needs it: a connection idle from the start never does.
    const held: HeldSocket = { role, socket, head, deflate, closed: false };
    this.held.push(held);
    holdSocket(held, this);
  }

  /**
   * Destroys the user's stages when no direction ever ran them (a failed `connect()`, `destroy()`
   * before `execute()`): a stage holding a resource (a file, a timer) is told the connection is
   * over. Stages that ran end with their pipelines. Idempotent.
   */
  releaseStages(): void {
    if (this.client?.forwarder !== undefined || this.upstream?.forwarder !== undefined) return;
    for (const stage of [...this.stages.client, ...this.stages.upstream]) {
      if (!stage.destroyed) stage.destroy();
    }
  }

  /** Whether a side's handshake completed (its socket was attached). */
  attached(role: ProxyRole): boolean {
    return (role === 'client' ? this.client : this.upstream) !== undefined || this.held.some((held) => held.role === role);
  }

  /** Builds the sides of the held sockets; a socket that closed meanwhile is reported closed. */
  private materialize(): void {
    const held = this.held;
    if (held.length === 0) return;
    this.held = [];
    const sides = held.map((h) => {
      releaseSocket(h);
      return this.build(h);
    });
    for (let i = 0; i < held.length; i++) {
      if (!held[i]!.closed) continue;
      // Its 'close' came while it was held: the side's own listener never will.
      sides[i]!.socketClosed = true;
      this.onSocketClose(sides[i]!);
    }
  }

  /** What a side needs now: the connection wakes (or, before `execute()`, its sides are built). */
  private awaken(): void {
    if (this.phase === 'dormant') this.wake();
    else this.materialize();
  }

  /** @internal A held socket's first chunk (which is its side's head), its end or its close. */
  onHeldSocketEvent(held: HeldSocket, chunk: Buffer | undefined): void {
    if (chunk !== undefined) held.head = held.head.length === 0 ? chunk : Buffer.concat([held.head, chunk]);
    this.awaken();
  }

  /** Leaves the dormant phase: both sides are built and both directions start. */
  private wake(): void {
    this.materialize();
    this.start();
  }

  private build(held: HeldSocket): Side {
    const { role, socket, head, deflate } = held;
    const options = this.options;
    const isClient = role === 'client';
    const maxFrameSize = Math.floor(isClient ? options.clientMaxFrameSize : options.upstreamMaxFrameSize);
    // Frames to this side come from the other side's stages and onFrame.
    const incoming = this.stages[isClient ? 'upstream' : 'client'];
    const side = new Side(role, socket, head, {
      maxFrameSize,
      maxMessageSize: options.aggregateFragments ? maxFrameSize : undefined,
      maxFragments: Math.floor(isClient ? options.clientMaxFragments : options.upstreamMaxFragments),
      validateUtf8: options.validateUtf8,
      userCode: options.onFrame !== undefined || incoming.length > 0,
      closeTimeout: options.lingeringTimeout,
      sendTimeout: options.sendTimeout,
      maxSendQueueSize: options.maxSendQueueSize,
      pingInterval: options.pingInterval[role],
      pongTimeout: options.pongTimeout[role],
      // The inflated message is held to the side's frame limit (whole messages: a bomb's measure).
      deflate: deflate === undefined || options.perMessageDeflate === false
        ? undefined
        : new DeflateHop(role, deflate, options.perMessageDeflate, maxFrameSize),
    }, this);
    if (isClient) this.client = side;
    else this.upstream = side;
    return side;
  }

  /**
   * Whether a direction can relay compressed frames untouched as far as user code goes: no
   * `onFrame`, and no stage on at least one direction.
   */
  get passThroughPossible(): boolean {
    return this.options.onFrame === undefined && (this.stages.client.length === 0 || this.stages.upstream.length === 0);
  }

  /** A side, once attached; asking for it builds the sides of a dormant connection. */
  side(role: ProxyRole): Side | undefined {
    if (this.held.length > 0) this.awaken();
    return role === 'client' ? this.client : this.upstream;
  }

  /** Whether `execute()` ran, or `destroy()` ended the connection. */
  get running(): boolean {
    return this.phase !== 'connecting';
  }

  /** Whether `destroy()` was called. */
  get destroyed(): boolean {
    return this.wasDestroyed;
  }

  /**
   * Runs both directions until both sockets closed. After `destroy()`, only the summary is awaited.
   *
   * @returns the summary; it never rejects
   */
  run(): Promise<ProxySummary> {
    if (this.wasDestroyed) return this.result();
    const done = this.result();
    this.lastActivity = Date.now();
    if (this.canSleep()) {
      this.phase = 'dormant';
      for (const held of this.held) watchSocket(held);
      this.armTimer();
      return done;
    }
    this.materialize();
    this.start();
    return done;
  }

  /**
   * Whether the connection can wait for its first byte without its sides: nothing arrived yet, both
   * sockets are open, and no user code is on either direction (a stage may push frames of its own
   * at any time, which needs its pipeline).
   */
  private canSleep(): boolean {
    if (this.held.length !== 2 || this.client !== undefined || this.upstream !== undefined) return false;
    if (this.options.onFrame !== undefined || this.stages.client.length > 0 || this.stages.upstream.length > 0) return false;
    return this.held.every((held) => held.head.length === 0 && !held.closed && !held.socket.destroyed && !held.socket.readableEnded);
  }

  /** Both directions start: from `run()`, or when a dormant connection wakes. */
  private start(): void {
    const client = this.client!;
    const upstream = this.upstream!;
    this.phase = 'open';
    for (const side of [client, upstream]) {
      side.lastFrameAt = side.recvMark = this.lastActivity;
      side.keepalive?.start(this.lastActivity);
    }
    this.startDirection(client, upstream);
    this.startDirection(upstream, client);
    // A side closed (or ended) before execute() or while dormant: its frames are read now, then it
    // is seen as gone.
    for (const side of [client, upstream]) {
      if (side.socketClosed && !side.readable.closeReceived && !side.ending) {
        this.lost(side, 'connection closed before its directions started');
      }
    }
    // A close() before execute() put the connection in its closing state already.
    if (client.state !== 'open' || upstream.state !== 'open') this.enterClosing();
    this.armTimer();
    this.checkDone();
    this.checkComplete();
  }

  /**
   * `close()`: sends each side a close frame (once), after the frame `onFrame` is returning, if any.
   *
   * @param codes - per side, the code and reason
   */
  close(codes: Readonly<Record<ProxyRole, [number, string]>>): void {
    if (this.phase === 'done') return;
    // Checked first: a close frame the writer refuses would fail that side's writer for good.
    wirePayload(closeFrame(...codes.client));
    wirePayload(closeFrame(...codes.upstream));
    this.awaken();
    // Once ending (also after destroy()), both writers are done: nothing more can be sent.
    if (this.phase === 'ending') return;
    this.closedBy ??= 'proxy';
    for (const side of [this.client, this.upstream]) {
      // A side owed the close of its failure gets that one (see owe()).
      if (side === undefined || side.owedClose !== undefined) continue;
      const [code, reason] = codes[side.role];
      const send = (): void => {
        side.outbox.sendClose(code, reason);
        if (!this.running) this.abandon(side);
      };
      if (side.forwarder !== undefined) side.forwarder.afterCurrent(send);
      else send();
    }
  }

  /**
   * Before `execute()`: the proxy gives up on a side (the other handshake failed, or `close()`): its
   * writer ends after whatever was sent, and its socket is cut off if it does not close in time.
   *
   * @param side - the side
   */
  abandon(side: Side): void {
    if (this.wasDestroyed) return;
    side.end(false);
    side.endedAt = Date.now();
    this.armTimer();
  }

  /**
   * `destroy()`: ends the connection at once, in any phase, with no close frame: both sockets are
   * destroyed now (the `destroyed` row of {@link ENDINGS}). The summary's `error` becomes
   * `WSP_ERR_DESTROYED` and `closedBy` `'proxy'` unless they were set already; each side whose close
   * handshake was not complete is `aborted`. Idempotent.
   *
   * @returns whether it ended the connection (false once it was done, or destroyed already)
   */
  destroy(): boolean {
    if (this.wasDestroyed) return false;
    if (this.phase === 'done') {
      this.wasDestroyed = true;
      return false;
    }
    // The sides are built first: they are what ends, and what the summary tells.
    this.awaken();
    this.wasDestroyed = true;
    if (this.phase === 'ending') {
      // Only the TCP close was left; the proxy cuts it, and says so unless an error came first.
      this.error ??= new WebSocketProxyError('WSP_ERR_DESTROYED', 'while the connections were closing');
      this.destroySockets();
    } else {
      this.finish('destroyed', undefined);
    }
    return true;
  }

  /** The promise `execute()` returns; made once, by `run()` or by `destroy()` before it. */
  private result(): Promise<ProxySummary> {
    if (this.finished === undefined) {
      this.finished = this.phase === 'done'
        ? Promise.resolve(this.summary())
        : new Promise<ProxySummary>((resolve) => {
          this.settle = resolve;
        });
    }
    return this.finished;
  }

  /** The summary so far. */
  summary(): ProxySummary {
    return {
      closedBy: this.closedBy,
      error: this.error,
      client: this.client?.summary ?? emptySummary(),
      upstream: this.upstream?.summary ?? emptySummary(),
    };
  }

  // ---- events from the sides (SideOwner) ----

  /** @internal */
  onCloseFrameRead(side: Side, frame: Frame): void {
    side.summary.closeReceived ??= closeInfo(frame);
    if (side.state === 'open') side.state = 'closeReceived';
    else if (side.state === 'closeSent') side.state = 'closed';
    if (!this.running || this.phase === 'ending' || this.phase === 'done') return;
    this.closedBy ??= side.role;
    this.enterClosing();
    this.checkDone();
  }

  /** @internal */
  onCloseSent(side: Side, frame: Frame): void {
    side.summary.closeSent = closeInfo(frame);
    // Its reply is awaited from now on: lingeringTimeout counts from here, and from each frame.
    side.lastFrameAt = Date.now();
    if (side.state === 'open') side.state = 'closeSent';
    else if (side.state === 'closeReceived') side.state = 'closed';
    this.debug(`${side.role} closing: code: ${frame.code} reason: ${JSON.stringify(frame.payload.toString())}`);
    if (!this.running || this.phase === 'ending' || this.phase === 'done') return;
    this.enterClosing();
    this.checkDone();
  }

  /** @internal */
  onSendFailure(side: Side, error: Error): void {
    if (!this.running || side.ending || this.phase === 'ending' || this.phase === 'done') return;
    if (side.state === 'closed' || side.readable.closeReceived) {
      // It closed its end after its close frame: nothing more was owed to it.
      side.state = 'closed';
      this.checkDone();
      return;
    }
    this.lost(side, error.message, error);
  }

  /** @internal */
  onViolation(_side: Side): void {
    // Its deadline (violationAt + lingeringTimeout) goes on the one timer.
    this.armTimer();
  }

  /** @internal */
  onPingWritten(): void {
    if (this.phase === 'open') this.armTimer();
  }

  /** @internal */
  onSocketClose(side: Side): void {
    side.endedAt = 0;
    if (this.phase === 'done') return;
    if (!this.running) {
      this.armTimer();
      return;
    }
    if (this.phase !== 'ending' && side.state !== 'closed') {
      if (side.readable.closeReceived) {
        // Its close frame came first: the connection is closed on its side, not lost.
        side.state = 'closed';
        this.checkDone();
      } else if (!side.ending) {
        this.lost(side, 'connection lost');
      }
    }
    this.checkComplete();
  }

  // ---- directions ----

  private startDirection(from: Side, to: Side): void {
    const options = this.options;
    const onFrame = options.onFrame;
    const proxy = this.proxy;
    const readers = onFrame !== undefined || this.stages[from.role].length > 0;
    // The observer (the inspector's) counts as user code: whole, plain frames, payloads not handed over.
    const userCode = readers || options.observer !== undefined;
    const compression = directionCompression(from.deflate, to.deflate, userCode);
    if (!options.aggregateFragments && !readers && compression.inflate === undefined && compression.deflate === undefined) {
      // No user code reads this direction: its frames go the direct path, from the reader to the
      // other side's outbox (see link.ts). Unobserved, nothing needs whole frames either: large ones
      // are relayed as they arrive (cut-through; see "Partial frames and cut-through" in
      // docs/architecture.md), compressed frames passing through included.
      const observer = options.observer?.({ role: from.role, id: this.id, proxy });
      if (observer === undefined) from.readable.enablePartialFrames();
      to.forwarder = new Link(from, to, this, observer);
      return;
    }
    const forwarder = new Forwarder({
      from: from.role,
      to: to.outbox,
      // No user code sees this direction's frames (aggregate() is the proxy's own and keeps none):
      // their payloads are the proxy's, so the receiving writer may mask them in place (client role).
      ownsPayloads: !userCode,
      deflate: compression.deflate,
      // A piece of a frame (cut-through) counts as a frame once, at its first piece.
      onInput: (frame) => this.onLinkFrame(from, frame),
      onFrame: onFrame === undefined ? undefined : (frame) => onFrame(proxy, from.role, frame.type, frame.payload, frame.fin, frame.code),
      onDrop: (frame, forwardedAnyway) => {
        if (forwardedAnyway) this.options.logger.warn(`${from.role} close frame cannot be dropped; forwarding it unchanged`);
        else this.debug(`${from.role} dropping ${frame.type} frame after onFrame requested it`);
      },
      onClose: (frame) => this.onCloseAtForwarder(from, to, frame),
      observer: options.observer?.({ role: from.role, id: this.id, proxy }),
      onObserverError: (err) => this.onLinkObserverError(from, err),
    });
    to.forwarder = forwarder;
    const stages: NodeJS.ReadWriteStream[] = [from.readable as unknown as NodeJS.ReadWriteStream];
    const inflate = compression.inflate === undefined ? undefined : new InflateStage(compression.inflate, options.validateUtf8);
    if (inflate !== undefined) stages.push(inflate as unknown as NodeJS.ReadWriteStream);
    if (options.aggregateFragments) {
      // The parser already enforces the message limits, before buffering; aggregate() only assembles.
      stages.push(aggregate({ maxMessageSize: Infinity, maxFragments: Infinity }) as unknown as NodeJS.ReadWriteStream);
    }
    const context: StageContext = { role: from.role, id: this.id, proxy };
    for (const stage of this.stages[from.role]) {
      setStageContext(stage, context);
      guardWrite(stage);
      stages.push(stage as unknown as NodeJS.ReadWriteStream);
    }
    stages.push(forwarder as unknown as NodeJS.ReadWriteStream);
    // Emitted before pipeline() passes the error on to the reader: see Side.stageError.
    for (let i = 1; i < stages.length; i++) {
      (stages[i] as unknown as TaggedStage)[kStageSide] = from;
      stages[i]!.on('error', stages[i] === (inflate as unknown) ? inflateOnError : stageOnError);
    }
    pipeline(stages, (err) => this.onDirectionEnd(from, to, err ?? undefined));
  }

  /**
   * @internal {@link LinkOwner}: a frame reached the end of its direction, the direct path's or a
   * Forwarder's (a piece counts as a frame once, at its first).
   */
  onLinkFrame(from: Side, frame: Frame): void {
    if (frame.partial === undefined || frame.partial.offset === 0) this.onInput(from, frame);
    else this.onPiece(from, frame);
  }

  /** @internal {@link LinkOwner} */
  onLinkClose(from: Side, to: Side, frame: Frame): boolean {
    return this.onCloseAtForwarder(from, to, frame);
  }

  /** @internal {@link LinkOwner} */
  onLinkEnd(from: Side, to: Side, err: Error | undefined): void {
    this.onDirectionEnd(from, to, err);
  }

  /** @internal {@link LinkOwner}; the Forwarder's observer failures are logged here too. */
  onLinkObserverError(from: Side, err: Error): void {
    this.options.logger.warn(`${from.role} frame observer failed, detached: ${err.message}`);
  }

  /** A piece after the first of a frame relayed in pieces: activity and bytes, not a new frame. */
  private onPiece(from: Side, frame: Frame): void {
    const now = Date.now();
    this.lastActivity = now;
    from.lastFrameAt = now;
    from.recvMark = now;
    from.summary.bytes += frame.payload.length;
  }

  private onInput(from: Side, frame: Frame): void {
    const now = Date.now();
    this.lastActivity = now;
    from.lastFrameAt = now;
    from.recvMark = now;
    from.summary.frames++;
    from.summary.bytes += frame.payload.length;
    if (this.options.debug) this.options.logger.debug(describeFrame(from.role, frame, this.options.aggregateFragments));
  }

  /** A close frame from `from` reached the end of its direction; returns whether to forward it. */
  private onCloseAtForwarder(from: Side, to: Side, frame: Frame): boolean {
    from.closeForwarded = true;
    if (to.owedClose !== undefined) {
      // The reply to the proxy's close (or a close of its own): every frame it sent before has
      // reached `to`, which is now sent the close it is owed, not this one.
      this.debug(`${from.role} close frame reached the end of its direction; the ${to.role} is sent its close`);
      this.endAll();
      return false;
    }
    const forward = (to.state === 'open' || to.state === 'closeReceived') && !to.ending;
    if (forward) {
      this.options.logger.info(`forwarding close with code: ${frame.code}, payload: ${JSON.stringify(frame.payload.toString())}`);
    } else {
      this.debug(`${from.role} close frame answers ours; not forwarded`);
    }
    return forward;
  }

  private onDirectionEnd(from: Side, to: Side, err: Error | undefined): void {
    if (this.phase === 'ending' || this.phase === 'done') return;
    // A violation ends the reader's output after the frames parsed before it: it is handled now that
    // they all went on down the direction (see readableOnViolation in side.ts).
    err ??= from.readable.violation;
    if (err !== undefined && err === from.readable.violation) {
      // Handled once: when the direction ended, or at its deadline if the frames before it stalled.
      if (from.violationHandled) return;
      from.violationHandled = true;
    }
    if (err === undefined) {
      if (from.readable.closeReceived) this.passOnClose(from, to);
      else if (from.readable.readableEnded || from.socketClosed) this.lost(from, 'connection closed without a close frame');
      else this.finish('user', undefined, new WebSocketProxyError('WSP_ERR_STAGE_FAILED', `a ${from.role} stage ended its output early`));
      return;
    }
    if (err === to.outbox.failure) {
      this.onSendFailure(to, err);
    } else if (err === from.readError) {
      if (isWebSocketProxyError(err) && err.closeCode !== 1006) this.finish(err.closeCode === 1009 ? 'limit' : 'protocol', from, err);
      else this.lost(from, err.message, err);
    } else if (isWebSocketProxyError(err) && POLICY_CLOSE_CODES.has(err.closeCode)) {
      this.finish('policy', from, err);
    } else {
      this.finish('user', undefined, isWebSocketProxyError(err) ? err : new WebSocketProxyError('WSP_ERR_STAGE_FAILED', err.message, { cause: err }));
    }
  }

  /**
   * `from`'s direction ended after its close frame: if its stages did not pass that close on, it goes
   * to `to` now, as it was received.
   */
  private passOnClose(from: Side, to: Side): void {
    if (to.owedClose !== undefined) {
      // The stages kept `from`'s close: its direction is over all the same, `to` gets its own close.
      from.closeForwarded = true;
      this.endAll();
      return;
    }
    const frame = from.readable.closeFrame;
    if (frame !== undefined && !from.closeForwarded && (to.state === 'open' || to.state === 'closeReceived') && !to.ending) {
      from.closeForwarded = true;
      this.options.logger.info(`${from.role} close frame was not passed on by the stages; sending it to the ${to.role}`);
      to.outbox.sendClose(frame.code, frame.payload);
    }
    this.checkDone();
  }

  // ---- endings ----

  /** `side`'s connection is gone without a close handshake: its peer is sent 1001. */
  private lost(side: Side, why: string, cause?: Error): void {
    if (this.phase === 'ending' || this.phase === 'done') return;
    if (side.summary.closeReceived === undefined && !side.summary.aborted) {
      side.summary.aborted = true;
      this.options.logger.info(`${side.role} connection lost: ${why}`);
    }
    side.state = 'closed';
    const timedOut = isWebSocketProxyError(cause) && cause.code === 'WSP_ERR_SEND_TIMEOUT';
    const error = isWebSocketProxyError(cause) && cause.code !== 'WSP_ERR_SOCKET_CLOSED'
      ? cause
      : new WebSocketProxyError('WSP_ERR_CONNECTION_LOST', `${side.role}: ${why}`, cause === undefined ? undefined : { cause });
    this.finish(timedOut ? 'sendTimeout' : 'lost', side, error);
  }

  /**
   * Ends the connection one way: sends each side what {@link ENDINGS} says, records the summary's
   * `closedBy` and `error`, then lingers for the replies or ends both connections at once. For a
   * `relayFirst` row the source's close is owed instead (see {@link Lifecycle.owe}). A side already
   * owed its close is never sent another one: {@link Lifecycle.endAll} sends it that one.
   *
   * @param ending - the row of the table
   * @param source - the side that caused it, if one did
   * @param cause - the error behind it
   */
  private finish(ending: Ending, source: Side | undefined, cause?: WebSocketProxyError): void {
    if (this.phase === 'ending' || this.phase === 'done') return;
    const rule = ENDINGS[ending];
    if (rule.error === 'cause') this.error ??= cause;
    else if (rule.error !== 'none') this.error ??= new WebSocketProxyError(rule.error);
    this.closedBy ??= rule.closedBy === 'source' && source !== undefined ? source.role : 'proxy';
    this.log(ending, source, cause);
    if (rule.relayFirst && source !== undefined && cause !== undefined) {
      // "An endpoint MUST NOT continue to attempt to process data (including a responding Close
      // frame) from the remote endpoint after being instructed to _Fail the WebSocket Connection_"
      // (RFC 6455 section 7.1.7): the source is no longer read, whatever comes next.
      source.stopReading();
      if (this.owe(source, cause)) {
        this.reply(this.peerOf(source), rule.peer, cause);
        this.enterClosing();
        return;
      }
    }
    for (const side of [this.client, this.upstream]) {
      if (side !== undefined && side.owedClose === undefined) this.reply(side, side === source ? rule.source : rule.peer, cause);
    }
    if (rule.destroy) {
      this.destroySockets();
    } else if (rule.graceful) {
      this.enterClosing();
      this.checkDone();
    } else {
      this.endAll();
    }
  }

  private log(ending: Ending, source: Side | undefined, cause: WebSocketProxyError | undefined): void {
    const logger = this.options.logger;
    if (ending === 'limit' || ending === 'policy') logger.info(`${source!.role} ${cause!.message}, closing`);
    else if (ending === 'protocol') logger.error(`${source!.role} protocol error: ${cause!.message}`);
    else if (ending === 'user') logger.error(`proxy failed: ${(cause!.cause as Error | undefined)?.message ?? cause!.message}`);
  }

  private reply(side: Side, reply: Reply, cause: WebSocketProxyError | undefined): void {
    switch (reply) {
      case 'nothing':
        return;
      case 'errorCode':
        sendErrorClose(side, cause!);
        return;
      case 1001:
        side.outbox.sendClose(1001, '');
        return;
      case 1011:
        side.outbox.sendClose(1011, 'Internal Error');
        return;
      case 'peerClose': {
        const peer = side === this.client ? this.upstream! : this.client!;
        const frame = peer.readable.closeFrame;
        if (frame !== undefined && !peer.closeForwarded) {
          peer.closeForwarded = true;
          side.outbox.sendClose(frame.code, frame.payload);
        } else {
          side.outbox.sendClose(1001, '');
        }
      }
    }
  }

  private peerOf(side: Side): Side {
    return side === this.client ? this.upstream! : this.client!;
  }

  /**
   * A `relayFirst` ending: when the source can still be sent a close frame and its peer may still
   * send it frames, the source's close is owed rather than sent. The peer's frames on their way keep
   * reaching the source until the peer's close reaches the end of its direction (it is not passed
   * on: see `onCloseAtForwarder` and `passOnClose`), the peer is gone, or `lingeringTimeout` (or a
   * lingering deadline) passes; then {@link Lifecycle.endAll} sends the source its close.
   *
   * @returns whether the close is owed (false: it is to be sent now)
   */
  private owe(source: Side, cause: WebSocketProxyError): boolean {
    const peer = this.peerOf(source);
    const outbox = source.outbox;
    if (outbox.closeSent !== undefined || outbox.failure !== undefined || source.ending || source.socketClosed) return false;
    if (peer.closeForwarded || peer.socketClosed || peer.owedClose !== undefined) return false;
    source.owedClose = cause;
    source.owedSince = Date.now();
    this.debug(`${source.role} no longer read; the ${peer.role}'s frames still reach it before its close ${cause.closeCode}`);
    return true;
  }

  /** Both sides sent and were sent a close frame: the connections end. */
  private checkDone(): void {
    if ((this.phase === 'open' || this.phase === 'closing') && this.client!.state === 'closed' && this.upstream!.state === 'closed') {
      this.endAll();
    }
  }

  private enterClosing(): void {
    if (this.phase === 'open') {
      this.phase = 'closing';
      this.closingSince = Date.now();
    }
    this.armTimer();
  }

  /**
   * Ends both connections, each in the order RFC 6455 section 7.1.1 gives its role. A side owed its
   * close (see {@link Lifecycle.owe}) is sent it first.
   */
  private endAll(): void {
    if (this.phase === 'ending' || this.phase === 'done') return;
    this.phase = 'ending';
    const now = Date.now();
    for (const side of [this.client!, this.upstream!]) {
      const owed = side.owedClose;
      side.owedClose = undefined;
      if (owed !== undefined) sendErrorClose(side, owed);
      side.end(true);
      if (!side.socketClosed) side.endedAt = now;
    }
    this.armTimer();
    this.checkComplete();
  }

  /**
   * `destroy()`: both sockets go now, with nothing more written; each side whose close handshake was
   * not complete is marked aborted.
   */
  private destroySockets(): void {
    this.phase = 'ending';
    for (const side of [this.client, this.upstream]) {
      if (side === undefined) continue;
      if (side.state !== 'closed' && !side.socketClosed) side.summary.aborted = true;
      side.owedClose = undefined;
      side.endedAt = 0;
      side.outbox.dispose();
      side.socket.destroy();
    }
    this.armTimer();
    this.checkComplete();
  }

  private checkComplete(): void {
    const client = this.client;
    const upstream = this.upstream;
    if (!this.running || this.phase === 'done') return;
    // Both sides exist once running, except after a destroy() before execute(): a side never
    // attached has nothing left to close.
    if ((client === undefined && !this.wasDestroyed) || (client !== undefined && !client.socketClosed)) return;
    if ((upstream === undefined && !this.wasDestroyed) || (upstream !== undefined && !upstream.socketClosed)) return;
    this.phase = 'done';
    this.clearTimer();
    client?.dispose();
    upstream?.dispose();
    this.releaseStages();
    this.debug('proxy finished');
    this.settle?.(this.summary());
  }

  // ---- the one timer ----

  /**
   * The next moment something is due: a teardown, a linger limit, the idle limit, a keepalive ping or
   * the end of the wait for its answer, a recv log line.
   */
  private nextDeadline(): number {
    const options = this.options;
    if (this.phase === 'dormant') {
      // Only the idle limit, the first keepalive ping and the recv log line can come before a byte:
      // the connection wakes for them (see onTimer).
      const waits = [options.idleTimeout, options.recvTimeout, options.pingInterval.client, options.pingInterval.upstream];
      return this.lastActivity + Math.min(...waits.map((wait) => wait ?? Infinity));
    }
    let next = Infinity;
    for (const side of [this.client, this.upstream]) {
      if (side === undefined) continue;
      if (side.endedAt > 0 && !side.socketClosed) next = Math.min(next, side.endedAt + options.lingeringTimeout);
      if (this.phase === 'closing' && side.state === 'closeSent') {
        next = Math.min(next, side.lastFrameAt + options.lingeringTimeout);
      }
      if (side.owedClose !== undefined) next = Math.min(next, side.owedSince + options.lingeringTimeout);
      if (side.readable.violation !== undefined && !side.violationHandled && (this.phase === 'open' || this.phase === 'closing')) {
        next = Math.min(next, side.violationAt + options.lingeringTimeout);
      }
      if ((this.phase === 'open' || this.phase === 'closing') && options.recvTimeout !== undefined) {
        next = Math.min(next, side.recvMark + options.recvTimeout);
      }
    }
    if (this.phase === 'closing') next = Math.min(next, this.closingSince + options.lingeringTime);
    if (this.phase === 'open') {
      if (options.idleTimeout !== undefined) next = Math.min(next, this.lastActivity + options.idleTimeout);
      for (const side of [this.client!, this.upstream!]) {
        if (side.keepalive !== undefined) next = Math.min(next, side.keepalive.deadline(side.lastFrameAt));
      }
    }
    return next;
  }

  /**
   * Arms the one timer for the next deadline. Frames only move timestamps: a timer that fires early
   * finds nothing due and is armed again for the moved deadline.
   */
  private armTimer(): void {
    if (this.phase === 'done') return;
    const now = Date.now();
    this.clampTimestamps(now);
    const next = this.nextDeadline();
    if (this.timer !== undefined && this.timerDue <= next && next !== Infinity) return;
    this.clearTimer();
    if (next === Infinity) return;
    this.timerDue = next;
    // A deadline further than setTimeout can wait is reached in steps: the timer fires early, finds
    // nothing due and is armed again.
    this.timer = setTimeout(timerFired, Math.min(MAX_TIMER_DELAY, Math.max(0, next - now)), this);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
  }

  /** @internal The timer fired: does what is due, then arms it for the next deadline. */
  onTimer(): void {
    this.timer = undefined;
    this.timerDue = Infinity;
    // A deadline of a dormant connection: it wakes, and what is due is done as for any open one.
    if (this.phase === 'dormant') this.wake();
    const now = Date.now();
    const options = this.options;
    this.clampTimestamps(now);
    for (const side of [this.client, this.upstream]) {
      if (side !== undefined && (this.phase === 'open' || this.phase === 'closing') && side.readable.violation !== undefined && !side.violationHandled && now >= side.violationAt + options.lingeringTimeout) {
        // The frames parsed before a violation did not get down their direction in time (a stage or
        // a peer holds them): the violator is failed now, without them.
        this.onDirectionEnd(side, this.peerOf(side), side.readable.violation);
      }
    }
    for (const side of [this.client, this.upstream]) {
      if (side !== undefined && side.endedAt > 0 && !side.socketClosed && now >= side.endedAt + options.lingeringTimeout) {
        // A peer that does not close its end in time is cut off.
        side.endedAt = 0;
        side.socket.destroy();
      }
    }
    const owing = [this.client, this.upstream].find((side) => side?.owedClose !== undefined && now >= side.owedSince + options.lingeringTimeout);
    if (this.phase === 'closing' && owing !== undefined) {
      this.options.logger.info(`no close reply from the ${this.peerOf(owing).role} in ${options.lingeringTimeout} ms; closing the ${owing.role}`);
      this.endAll();
    }
    if (this.phase === 'closing') {
      if (now >= this.closingSince + options.lingeringTime) {
        this.lingerExpired(`linger expired: no close reply in ${options.lingeringTime} ms`);
      } else if ([this.client!, this.upstream!].some((side) => side.state === 'closeSent' && now >= side.lastFrameAt + options.lingeringTimeout)) {
        this.lingerExpired(`linger timeout: no frame in ${options.lingeringTimeout} ms while waiting for a close reply`);
      }
    }
    if (this.phase === 'open' && options.idleTimeout !== undefined && now - this.lastActivity >= options.idleTimeout) {
      this.options.logger.info(`no frame for ${options.idleTimeout} ms, closing both sides`);
      this.finish('idle', undefined);
    }
    if (this.phase === 'open') this.keepalive(now);
    if ((this.phase === 'open' || this.phase === 'closing') && options.recvTimeout !== undefined) {
      for (const side of [this.client!, this.upstream!]) {
        if (!side.ending && !side.readStopped && now - side.recvMark >= options.recvTimeout) {
          // The seed's meaning: a line in the log, never a close.
          this.options.logger.info(`timeout receiving frame from ${side.role}, reopening`);
          side.recvMark = now;
        }
      }
    }
    this.armTimer();
  }

  /** Keepalive, while open: pings the sides that have been silent, gives up on those that stay so. */
  private keepalive(now: number): void {
    for (const side of [this.client!, this.upstream!]) {
      const keepalive = side.keepalive;
      if (keepalive === undefined || this.phase !== 'open') continue;
      const action = keepalive.check(now, side.lastFrameAt);
      if (action === 'ping') {
        // "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in response, unless it
        // already received a Close frame" (RFC 6455 section 5.5.2): a live side answers.
        side.outbox.ping(keepalive.ping());
        this.debug(`${side.role} silent for ${keepalive.interval} ms: keepalive ping`);
      } else if (action === 'lost') {
        this.lost(side, `no answer to a keepalive ping in ${keepalive.timeout} ms`,
          new WebSocketProxyError('WSP_ERR_KEEPALIVE_TIMEOUT', `${side.role}: nothing received for ${keepalive.timeout} ms after a ping`));
        // Nothing is owed to a side that does not answer: no FIN, no lingering.
        side.socket.destroy();
      }
    }
  }

  /**
   * A wall clock set back leaves timestamps in the future, which would push their deadlines away
   * by as much: they are taken as now.
   */
  private clampTimestamps(now: number): void {
    if (this.lastActivity > now) this.lastActivity = now;
    if (this.closingSince > now) this.closingSince = now;
    for (const side of [this.client, this.upstream]) {
      if (side === undefined) continue;
      if (side.lastFrameAt > now) side.lastFrameAt = now;
      if (side.recvMark > now) side.recvMark = now;
      if (side.endedAt > now) side.endedAt = now;
      if (side.owedSince > now) side.owedSince = now;
      if (side.violationAt > now) side.violationAt = now;
      side.keepalive?.clamp(now);
    }
  }

  private lingerExpired(why: string): void {
    this.options.logger.info(why);
    this.finish('linger', undefined);
  }

  private debug(message: string): void {
    if (this.options.debug) this.options.logger.debug(message);
  }
}

/** Sends a side the close frame of its failure: its close code, and its message as the reason. */
function sendErrorClose(side: Side, cause: WebSocketProxyError): void {
  side.outbox.sendClose(cause.closeCode, cause.closeCode === 1009 ? 'Payload Too Large' : cause.message);
}

function timerFired(lifecycle: Lifecycle): void {
  lifecycle.onTimer();
}

/**
 * The inflate stage's failures are the source's own (a bomb, a broken DEFLATE stream, text that is
 * not UTF-8 once inflated): they end the connection as the reader's would (limit or protocol).
 */
function inflateOnError(this: TaggedStage, err: Error): void {
  const side = this[kStageSide];
  side.stageError ??= err;
  side.readError ??= err;
}

function stageOnError(this: TaggedStage, err: Error): void {
  const side = this[kStageSide];
  side.stageError ??= err;
}

/**
 * A stage's `write()` that turns a synchronous throw (from a user's `transform()`, which Node's
 * Transform calls without a guard) into the stage's error instead of an exception out of the
 * previous stage's `push()`, which would crash the process.
 */
function guardedWrite(this: Stage & TaggedStage, ...args: unknown[]): boolean {
  try {
    return this[kOriginalWrite]!.apply(this, args);
  } catch (err) {
    this.destroy(toError(err));
    return false;
  }
}

function guardWrite(stage: Stage): void {
  // Our own stages already turn throws into errors.
  if (stage instanceof FrameStage || stage instanceof AggregateTransform) return;
  const tagged = stage as unknown as TaggedStage & { write: (...args: unknown[]) => boolean };
  if (tagged[kOriginalWrite] !== undefined) return;
  tagged[kOriginalWrite] = tagged.write;
  tagged.write = guardedWrite;
}
