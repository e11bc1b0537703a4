/**
 * The JSON shapes the inspector's HTTP API and event channel carry (docs/inspector.md): what the
 * page reads, and what any other client of the API may rely on.
 *
 * @packageDocumentation
 */
import type { FrameType } from '../frame.js';
import type { ProxyRole } from '../proxy/options.js';

/** Frames and payload bytes that came from one side. */
export interface SideStats {
  /** Frames (whole messages when aggregating) that passed the inspector's stage. */
  frames: number;
  /** Their payload bytes. */
  bytes: number;
}

/** A connection's counts, as a `stats` event carries them. */
export interface ConnectionStats {
  /** The connection's id. */
  id: string;
  /** What came from the client. */
  client: SideStats;
  /** What came from the upstream. */
  upstream: SideStats;
}

/** One connection, live or recently closed. */
export interface ConnectionInfo {
  /** The proxy's id. */
  id: string;
  /** The route's name (its path unless named), or null when not known (a tracked bare proxy). */
  route: string | null;
  /** The client's address and port, or null when not known. */
  clientAddress: string | null;
  /** The upstream URL without credentials nor query, or null when not known. */
  upstreamUrl: string | null;
  /** When the connection was opened, epoch ms. */
  opened: number;
  /** When it ended, epoch ms, or null while it is live. */
  closed: number | null;
  /** What came from the client. */
  fromClient: SideStats;
  /** What came from the upstream. */
  fromUpstream: SideStats;
  /**
   * The code of the close frame each side sent or got, whichever came first (1005 for a close frame
   * without a code), or null.
   */
  closeCodes: { client: number | null; upstream: number | null };
}

/** What the inspector shows of a connection besides its frames (see `ConnectionInfo`, `Inspector.track`). */
export interface TrackInfo {
  /**
   * The route's name.
   * @defaultValue null
   */
  route?: string | null;
  /**
   * The client's address (and port).
   * @defaultValue null
   */
  clientAddress?: string | null;
  /**
   * The upstream URL (leave credentials out).
   * @defaultValue null
   */
  upstreamUrl?: string | null;
}

/** One frame in a connection's message table. */
export interface MessageRow {
  /** The connection's id. */
  connection: string;
  /** Per connection, from 1, in the order frames passed the inspector (both directions). */
  seq: number;
  /** When it passed, epoch ms (read once per turn of the event loop: the frames of one socket read share it). */
  time: number;
  /** The side that sent it (for an injected frame: the side it stands in for). */
  from: ProxyRole;
  /** The frame type. */
  type: FrameType;
  /** The FIN bit. */
  fin: boolean;
  /** Payload bytes (for a close frame, the reason's). */
  size: number;
  /** Close frames with a code. */
  code?: number;
  /** Text (and text continuation, close reason): the first 120 characters; binary: hex of the first 40 bytes. */
  preview: string;
  /** Set when a breakpoint's edit replaced the payload. */
  edited?: boolean;
  /** Set on a frame sent from the inspector (`POST .../send`), not by a peer. */
  injected?: boolean;
}

/** A row with the payload the inspector kept (`GET .../messages/:seq`). */
export interface MessageDetail extends MessageRow {
  /** The payload (for a close frame, the reason), or its first bytes when `truncated`. */
  payload: string;
  /** `utf8` when the kept bytes are valid UTF-8 and the frame is not binary, else `base64`. */
  encoding: 'utf8' | 'base64';
  /** Whether only the first `maxPayloadBytes` bytes were kept. */
  truncated: boolean;
}

/** A message a breakpoint holds. */
export interface HeldMessage {
  /** The hold's id (for `POST /api/held/:id`). */
  id: string;
  /** The connection's id. */
  connection: string;
  /** The side that sent it. */
  from: ProxyRole;
  /** The message's type (a continuation frame's is its message's). */
  type: 'text' | 'binary';
  /** Payload bytes. */
  size: number;
  /** A text frame's text, when at most `maxPayloadBytes` bytes. */
  text?: string;
  /** A binary frame's payload in base64, when at most `maxPayloadBytes` bytes. */
  base64?: string;
  /** When it is released as is, epoch ms. */
  deadline: number;
}

/** A breakpoint: data frames from `from` whose text (binary: base64) matches are held. */
export interface Breakpoint {
  /** Its id. */
  id: string;
  /** Which side's messages it holds. */
  from: ProxyRole | 'both';
  /** The regular expression's source. */
  pattern: string;
  /** Its flags (any of `dimsuv`). */
  flags: string;
}

/** How a held message was resolved. */
export type HeldAction = 'release' | 'drop' | 'timeout';

/** The events of `GET /api/events`, by name, with their data. */
export interface InspectorEvents {
  /** First event of every stream: the state so far (closed connections still kept included). */
  hello: { connections: ConnectionInfo[]; breakpoints: Breakpoint[]; held: HeldMessage[] };
  /** A connection is shown. */
  open: ConnectionInfo;
  /**
   * The rows of one flush (frames that passed, were injected, or were released after a hold), in
   * order: of every connection, or of the one the page subscribed to (`?connection=<id>`).
   */
  messages: MessageRow[];
  /**
   * Rows of a connection that passed since the last batch and that this batch does not carry: past
   * `liveRowsPerSecond`, a batch carries only the newest. Sent right before the batch's `messages`.
   * The rows stay kept (`GET /api/connections/:id/messages`) while the ring has them.
   */
  skipped: { connection: string; count: number };
  /**
   * The counts of the connections whose counts changed since the last `stats` event, all in one
   * event, at most once a second.
   */
  stats: ConnectionStats[];
  /** A connection ended (`closed` set). */
  close: ConnectionInfo;
  /** A breakpoint holds a message. */
  held: HeldMessage;
  /** A held message was released, dropped, or released on its timeout. */
  resolved: { id: string; action: HeldAction };
  /** The whole list of breakpoints, after any change. */
  breakpoints: Breakpoint[];
}
