/**
 * permessage-deflate on one hop of a proxied connection: what the hop negotiated, and its zlib
 * codecs, made on the first compressed message that needs them and freed with the side. An idle
 * connection, or one whose compressed frames pass through, holds no zlib state.
 *
 * @packageDocumentation
 */
import {
  type DeflateParameters,
  MessageDeflater,
  MessageInflater,
  type ResolvedDeflateSettings,
  passThroughDirections,
} from '../protocol/deflate.js';
import type { ProxyRole } from './options.js';

/** One hop's permessage-deflate: its parameters and, once needed, its inflater and deflater. */
export class DeflateHop {
  private inflaterInstance: MessageInflater | undefined;
  private deflaterInstance: MessageDeflater | undefined;
  private closed = false;

  /**
   * @param role - the side the hop leads to: the proxy is the server of the client hop, the client
   *   of the upstream hop
   * @param parameters - what the hop negotiated
   * @param settings - the proxy's settings (window and memory limits, threshold, limiter)
   * @param maxMessageSize - most bytes a message from this side may inflate to
   */
  constructor(
    readonly role: ProxyRole,
    readonly parameters: DeflateParameters,
    private readonly settings: ResolvedDeflateSettings,
    private readonly maxMessageSize: number,
  ) {}

  /** Messages of at least this many bytes (first fragment) are compressed when the proxy compresses. */
  get threshold(): number {
    return this.settings.threshold;
  }

  /** The inflater for messages from this side, made on first use. */
  inflater(): MessageInflater {
    this.inflaterInstance ??= new MessageInflater({
      parameters: this.parameters,
      role: this.codecRole,
      settings: this.settings,
      maxMessageSize: this.maxMessageSize,
    });
    if (this.closed) this.inflaterInstance.close();
    return this.inflaterInstance;
  }

  /** The deflater for messages to this side, made on first use. */
  deflater(): MessageDeflater {
    this.deflaterInstance ??= new MessageDeflater({ parameters: this.parameters, role: this.codecRole, settings: this.settings });
    if (this.closed) this.deflaterInstance.close();
    return this.deflaterInstance;
  }

  /** Frees the codecs (calls under way finish first); later calls reject. Idempotent. */
  close(): void {
    this.closed = true;
    this.inflaterInstance?.close();
    this.deflaterInstance?.close();
  }

  private get codecRole(): 'server' | 'client' {
    return this.role === 'client' ? 'server' : 'client';
  }
}

/**
 * How one direction handles compression:
 * - `inflate`: compressed messages from the source are inflated before anything else sees them;
 * - `deflate`: messages to the destination are compressed after `onFrame`.
 * `inflate` and `deflate` may both hold (a stage between two compressing hops). Neither, between
 * two compressing hops, is pass-through: compressed frames are relayed untouched (RSV1 kept, no zlib).
 */
export interface DirectionCompression {
  inflate: DeflateHop | undefined;
  deflate: DeflateHop | undefined;
}

/**
 * Decides a direction's compression.
 *
 * @param from - the source side's hop, undefined when it negotiated none
 * @param to - the destination side's hop, undefined when it negotiated none
 * @param userCode - whether `onFrame` or a user stage sees this direction's frames
 */
export function directionCompression(from: DeflateHop | undefined, to: DeflateHop | undefined, userCode: boolean): DirectionCompression {
  if (from !== undefined && to !== undefined && !userCode) {
    const clientHop = from.role === 'client' ? from : to;
    const upstreamHop = from.role === 'client' ? to : from;
    const relay = passThroughDirections(clientHop.parameters, upstreamHop.parameters);
    if (from.role === 'client' ? relay.clientToUpstream : relay.upstreamToClient) {
      return { inflate: undefined, deflate: undefined };
    }
  }
  return { inflate: from, deflate: to };
}
