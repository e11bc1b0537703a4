/**
 * The sockets of a connection whose sides are not built yet. Until a side's first byte, a proxied
 * connection needs no reader, writer, pipeline or stage: it holds its two sockets with the
 * module-level listeners below (found through a symbol, as ws's `socketOnData` is), and builds its
 * {@link Side}s when a byte, an end, a close, a deadline or a call of the user's asks for them.
 *
 * @packageDocumentation
 */
import type { Duplex } from 'node:stream';
import type { DeflateParameters } from '../protocol/deflate.js';
import type { ProxyRole } from './options.js';

/** A side's socket after its handshake, before its {@link Side} is built. */
export interface HeldSocket {
  readonly role: ProxyRole;
  readonly socket: Duplex;
  /** Bytes read past the handshake, or the first chunk that woke the connection. */
  head: Buffer;
  /** The permessage-deflate parameters its hop negotiated, if any. */
  readonly deflate: DeflateParameters | undefined;
  /** Whether its socket closed while held. */
  closed: boolean;
}

/** What a held socket reports to: the connection's lifecycle. */
export interface HeldSocketOwner {
  /** The socket's first chunk, an end or a close: the sides are wanted now. */
  onHeldSocketEvent(held: HeldSocket, chunk: Buffer | undefined): void;
}

const kHeld = Symbol('held');
const kOwner = Symbol('heldOwner');

interface Tagged {
  [kHeld]?: HeldSocket;
  [kOwner]?: HeldSocketOwner;
}

/**
 * Holds a socket: paused, with an error guard and a close listener (a socket may go before its side
 * is built, and its `'close'` comes once).
 *
 * @param held - the socket and what its side will be built from
 * @param owner - who is told
 */
export function holdSocket(held: HeldSocket, owner: HeldSocketOwner): void {
  const socket = held.socket as Duplex & Tagged;
  socket[kHeld] = held;
  socket[kOwner] = owner;
  socket.pause();
  socket.on('error', heldOnError);
  socket.once('close', heldOnClose);
}

/**
 * Reads a held socket while the connection sleeps: its first chunk (or its end) wakes the
 * connection. A socket closed already is left alone (its close was reported).
 *
 * @param held - a socket given to {@link holdSocket}
 */
export function watchSocket(held: HeldSocket): void {
  if (held.closed) return;
  const socket = held.socket;
  socket.on('data', heldOnData);
  socket.on('end', heldOnEnd);
  socket.resume();
}

/**
 * Lets go of a held socket before its side is built on it: paused, with none of these listeners.
 *
 * @param held - a socket given to {@link holdSocket}
 */
export function releaseSocket(held: HeldSocket): void {
  const socket = held.socket as Duplex & Tagged;
  socket.pause();
  socket.removeListener('data', heldOnData);
  socket.removeListener('end', heldOnEnd);
  socket.removeListener('close', heldOnClose);
  socket.removeListener('error', heldOnError);
  socket[kHeld] = undefined;
  socket[kOwner] = undefined;
}

/**
 * Whether a socket is held: its connection's side on it is not built yet.
 *
 * @param socket - a socket handed to a proxy
 */
export function isHeld(socket: Duplex): boolean {
  return (socket as Duplex & Tagged)[kHeld] !== undefined;
}

function report(socket: Tagged, chunk: Buffer | undefined): void {
  const held = socket[kHeld];
  if (held !== undefined) socket[kOwner]!.onHeldSocketEvent(held, chunk);
}

function heldOnData(this: Tagged, chunk: Buffer): void {
  report(this, chunk);
}

function heldOnEnd(this: Tagged): void {
  report(this, undefined);
}

function heldOnClose(this: Tagged): void {
  const held = this[kHeld];
  if (held === undefined) return;
  held.closed = true;
  report(this, undefined);
}

function heldOnError(): void {
  // The 'close' that follows is what counts; the side built then finds its socket destroyed.
}
