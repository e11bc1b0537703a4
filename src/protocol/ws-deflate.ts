/**
 * A typed bridge to the parts of `ws` that implement permessage-deflate (RFC 7692): the
 * `PerMessageDeflate` class and the `Sec-WebSocket-Extensions` parser/formatter (`extension`).
 * `ws` exports both but documents neither and `@types/ws` declares neither, so their shape is
 * declared here, once, and the `ws` range is pinned in package.json. Under ESM they are named
 * exports of `ws` (its wrapper.mjs); the default export, the bare `WebSocket` class, lacks the
 * `WebSocket.PerMessageDeflate` / `WebSocket.extension` statics that only the CommonJS entry adds.
 * `test/protocol/ws-deflate.spec.ts` fails if a `ws` upgrade stops exporting them.
 *
 * @packageDocumentation
 */
import * as ws from 'ws';

/**
 * Extension parameters as `ws` handles them: before `accept()`, each value is the list of raw
 * values (`true` for a parameter without value); after, a single normalized value.
 *
 * @internal
 */
export type WsParams = Record<string, Array<string | true> | string | number | true>;

/** The options of `ws`'s `PerMessageDeflate` constructor that this library uses. @internal */
export interface WsDeflateOptions {
  isServer?: boolean;
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  serverMaxWindowBits?: number | boolean;
  clientMaxWindowBits?: number | boolean;
  maxPayload?: number;
  threshold?: number;
  concurrencyLimit?: number;
  zlibDeflateOptions?: { memLevel?: number; level?: number; chunkSize?: number };
  zlibInflateOptions?: { chunkSize?: number };
}

/** An instance of `ws`'s `PerMessageDeflate` (lib/permessage-deflate.js). @internal */
export interface WsPerMessageDeflate {
  /** The negotiated parameters, normalized (numbers and `true`); null before `accept()`. */
  params: Record<string, number | true> | null;
  /**
   * The per-call inflate limit: the inflated bytes of one `decompress()` call are counted while
   * zlib produces them and the call fails once they exceed it (values below 1 mean no limit).
   * Read by ws on every inflated chunk, so it can be changed between calls.
   */
  _maxPayload: number;
  offer(): Record<string, number | true>;
  accept(configurations: WsParams[]): Record<string, number | true>;
  decompress(data: Buffer, fin: boolean, callback: (err: WsDeflateError | null, result?: Buffer) => void): void;
  compress(data: Buffer, fin: boolean, callback: (err: Error | null, result?: Buffer) => void): void;
  cleanup(): void;
}

/** An error from `decompress()`: `code` is `'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'` past the limit. @internal */
export interface WsDeflateError extends Error {
  code?: string;
}

/** The binding: the class and the header codec. @internal */
export interface WsDeflateBinding {
  PerMessageDeflate: (new (options?: WsDeflateOptions) => WsPerMessageDeflate) & { readonly extensionName: string };
  extension: {
    /** Parses a `Sec-WebSocket-Extensions` value; throws a SyntaxError when it is malformed. */
    parse(header: string): Record<string, WsParams[]>;
    /** Formats `{ name: params | params[] }` as a `Sec-WebSocket-Extensions` value. */
    format(extensions: Record<string, Record<string, number | true | string> | Array<Record<string, number | true | string>>>): string;
  };
}

const exported = ws as unknown as Partial<WsDeflateBinding>;

/**
 * Returns `ws`'s permessage-deflate implementation.
 *
 * @throws Error when the installed `ws` no longer exports `PerMessageDeflate` or `extension`
 *   (outside the pinned range)
 * @internal
 */
export function wsDeflate(): WsDeflateBinding {
  const { PerMessageDeflate, extension } = exported;
  if (typeof PerMessageDeflate !== 'function' || typeof extension?.parse !== 'function'
    || typeof extension.format !== 'function') {
    throw new Error('the installed ws does not export PerMessageDeflate and extension: permessage-deflate is unavailable');
  }
  return { PerMessageDeflate, extension };
}
