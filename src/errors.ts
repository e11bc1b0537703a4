/**
 * The one table of every error ws-frame-proxy raises for a protocol violation, a limit or a misuse of
 * a stream, each with its stable code, the WebSocket close code that answers it and a message.
 *
 * `docs/errors.md` lists the same table for readers; `test/errors.spec.ts` checks the two agree.
 *
 * @packageDocumentation
 */

/**
 * Every `WSP_ERR_*` code with its close code and message.
 *
 * Close code 1006 (abnormal closure) is never sent on the wire (RFC 6455 section 7.4.1); it marks
 * errors after which no close frame can be exchanged, e.g. a connection that ended mid-frame.
 */
export const ErrorCodes = {
  /** RSV1, RSV2 or RSV3 set without an extension that defines it (RFC 6455 section 5.2). */
  WSP_ERR_UNEXPECTED_RSV: { closeCode: 1002, message: 'reserved bits must be clear' },
  /** Opcode 3-7 or 0xB-0xF (RFC 6455 section 5.2). */
  WSP_ERR_INVALID_OPCODE: { closeCode: 1002, message: 'reserved opcode' },
  /** Control frame with FIN=0 (RFC 6455 section 5.5). */
  WSP_ERR_FRAGMENTED_CONTROL: { closeCode: 1002, message: 'control frames must not be fragmented' },
  /** Control frame with a payload of more than 125 bytes (RFC 6455 section 5.5). */
  WSP_ERR_CONTROL_TOO_LONG: { closeCode: 1002, message: 'control frame payload must be 125 bytes or less' },
  /** 64-bit payload length with its most significant bit set (RFC 6455 section 5.2). */
  WSP_ERR_INVALID_LENGTH: { closeCode: 1002, message: 'the most significant bit of a 64-bit length must be 0' },
  /** Unmasked frame from a client (RFC 6455 section 5.1). */
  WSP_ERR_MASK_REQUIRED: { closeCode: 1002, message: 'frames from a client must be masked' },
  /** Masked frame from a server (RFC 6455 section 5.1). */
  WSP_ERR_MASK_FORBIDDEN: { closeCode: 1002, message: 'frames from a server must not be masked' },
  /** Close frame whose body is 1 byte long (RFC 6455 section 5.5.1). */
  WSP_ERR_INVALID_CLOSE_BODY: { closeCode: 1002, message: 'a close body must start with a 2-byte status code' },
  /** Close frame received with a code that may not be sent (RFC 6455 section 7.4). */
  WSP_ERR_INVALID_CLOSE_CODE: { closeCode: 1002, message: 'invalid close code' },
  /** Text payload or close reason that is not valid UTF-8 (RFC 6455 sections 5.6 and 8.1). */
  WSP_ERR_INVALID_UTF8: { closeCode: 1007, message: 'invalid UTF-8' },
  /** Continuation frame with no fragmented message open (RFC 6455 section 5.4). */
  WSP_ERR_UNEXPECTED_CONTINUATION: { closeCode: 1002, message: 'continuation frame without a message to continue' },
  /** Text or binary frame while a fragmented message is still open (RFC 6455 section 5.4). */
  WSP_ERR_MESSAGE_NOT_FINISHED: { closeCode: 1002, message: 'new data frame before the fragmented message ended' },
  /** Frame payload longer than `maxFrameSize`. */
  WSP_ERR_FRAME_TOO_LARGE: { closeCode: 1009, message: 'frame payload exceeds maxFrameSize' },
  /** Frame that cannot be held within `maxBufferedBytes`. */
  WSP_ERR_BUFFER_LIMIT: { closeCode: 1009, message: 'frame exceeds maxBufferedBytes' },
  /** A fragmented message larger than its limit (`maxMessageSize`, or a proxy's `*MaxFrameSize` when aggregating). */
  WSP_ERR_MESSAGE_TOO_LARGE: { closeCode: 1009, message: 'message exceeds its size limit' },
  /** A fragmented message with more fragments than `maxFragments`. */
  WSP_ERR_TOO_MANY_FRAGMENTS: { closeCode: 1009, message: 'message exceeds its fragment limit' },
  /** The connection ended in the middle of a frame. */
  WSP_ERR_TRUNCATED_FRAME: { closeCode: 1006, message: 'connection ended in the middle of a frame' },
  /** The socket closed before a frame could be handed to it. */
  WSP_ERR_SOCKET_CLOSED: { closeCode: 1006, message: 'the socket closed before the frame was written' },
  /** A `Frame` object handed to a `FrameWritable` that cannot be sent as it is. */
  WSP_ERR_INVALID_FRAME: { closeCode: 1011, message: 'invalid frame' },
  /** A data frame written after a close frame (RFC 6455 section 5.5.1). */
  WSP_ERR_WRITE_AFTER_CLOSE: { closeCode: 1011, message: 'data frame written after a close frame' },
  /** A side accepted no bytes for `sendTimeout` milliseconds and is treated as gone. */
  WSP_ERR_SEND_TIMEOUT: { closeCode: 1001, message: 'send timed out' },
  /** `execute()` or `send()` called before the handshake with that side completed. */
  WSP_ERR_NOT_CONNECTED: { closeCode: 1011, message: 'not connected' },
  /** The upstream URL is not a usable `ws://` or `wss://` URL. */
  WSP_ERR_INVALID_URL: { closeCode: 1011, message: 'invalid upstream URL' },
  /** The upstream could not be reached (DNS, TCP or TLS failure, or it closed during the handshake). */
  WSP_ERR_UPSTREAM_UNREACHABLE: { closeCode: 1014, message: 'upstream unreachable' },
  /** The upstream handshake did not complete within `connectTimeout`. */
  WSP_ERR_UPSTREAM_TIMEOUT: { closeCode: 1014, message: 'upstream handshake timed out' },
  /** The upstream answered the upgrade with another status than 101; see `statusCode`, `headers`, `body`. */
  WSP_ERR_UPSTREAM_REJECTED: { closeCode: 1014, message: 'upstream rejected the WebSocket handshake' },
  /** The upstream's 101 response is not a valid WebSocket handshake answer (RFC 6455 section 4.1). */
  WSP_ERR_UPSTREAM_HANDSHAKE: { closeCode: 1014, message: 'invalid upstream handshake response' },
  /** The client's upgrade request is not a valid WebSocket opening handshake (RFC 6455 section 4.2.1). */
  WSP_ERR_CLIENT_HANDSHAKE: { closeCode: 1002, message: 'invalid client handshake request' },
  /** A side's connection ended (TCP end, reset) without a close handshake. */
  WSP_ERR_CONNECTION_LOST: { closeCode: 1001, message: 'connection lost' },
  /** A side sent nothing for `pongTimeout` milliseconds after the proxy's keepalive ping; its connection was cut. */
  WSP_ERR_KEEPALIVE_TIMEOUT: { closeCode: 1006, message: 'no answer to a keepalive ping' },
  /** `WebSocketProxy.destroy()` cut both connections without a close handshake (or ended a handshake under way). */
  WSP_ERR_DESTROYED: { closeCode: 1006, message: 'the proxy was destroyed' },
  /** No frame in either direction for `idleTimeout` milliseconds: both sides were sent 1001. */
  WSP_ERR_IDLE_TIMEOUT: { closeCode: 1001, message: 'idle timeout' },
  /** A close reply did not come within `lingeringTime` (or `lingeringTimeout` between frames). */
  WSP_ERR_CLOSE_TIMEOUT: { closeCode: 1001, message: 'close handshake timed out' },
  /** User code (`onFrame`, a stage) threw, rejected or ended a direction early; `cause` holds what it threw. */
  WSP_ERR_STAGE_FAILED: { closeCode: 1011, message: 'a stage failed' },
  /** A stage refused a message on policy grounds (e.g. `WebSocketProxyError('WSP_ERR_POLICY_VIOLATION', 'why')` in user code). */
  WSP_ERR_POLICY_VIOLATION: { closeCode: 1008, message: 'policy violation' },
  /** A message failed validation (`validateJson()`: not JSON, not matching the schema, or a refused binary message). */
  WSP_ERR_VALIDATION_FAILED: { closeCode: 1007, message: 'message failed validation' },
  /** A side sent more than `rateLimit()` allows, with `action: 'close'`. */
  WSP_ERR_RATE_LIMITED: { closeCode: 1008, message: 'rate limit exceeded' },
  /** `send()` would queue more than `maxSendQueueSize` bytes of injected frames for a side. */
  WSP_ERR_SEND_QUEUE_FULL: { closeCode: 1011, message: 'send queue full' },
  /** A compressed message (RSV1, permessage-deflate) whose payload is not a valid DEFLATE stream (RFC 7692 section 7.2.2). */
  WSP_ERR_INFLATE_FAILED: { closeCode: 1007, message: 'compressed message cannot be inflated' },
  /** A recording (JSON Lines) that cannot be read: a bad header, a line that is not JSON or a frame record with a bad field. */
  WSP_ERR_INVALID_RECORDING: { closeCode: 1011, message: 'invalid recording' },
} as const;

/** One of the stable error codes, e.g. `'WSP_ERR_INVALID_OPCODE'`. */
export type ErrorCode = keyof typeof ErrorCodes;

/**
 * The error class for every coded error of ws-frame-proxy.
 *
 * `code` is stable across releases and is what to branch on; `closeCode` is the status the side that
 * caused it should be sent in a close frame (1006 when no close frame can be sent).
 */
export class WebSocketProxyError extends Error {
  /** Stable error code, one of {@link ErrorCodes}. */
  readonly code: ErrorCode;
  /** WebSocket close code that answers this error. */
  readonly closeCode: number;

  /**
   * @param code - the error code; its message and close code come from {@link ErrorCodes}
   * @param detail - appended to the table's message after a colon, e.g. the offending value
   * @param options - `cause`: the error behind this one (e.g. a socket error)
   */
  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const entry = ErrorCodes[code];
    super(detail === undefined ? entry.message : `${entry.message}: ${detail}`, options);
    this.name = 'WebSocketProxyError';
    this.code = code;
    this.closeCode = entry.closeCode;
  }
}

/**
 * Tells whether `value` is a coded ws-frame-proxy error.
 *
 * @param value - anything caught or emitted
 * @returns true only for instances of {@link WebSocketProxyError}
 */
export function isWebSocketProxyError(value: unknown): value is WebSocketProxyError {
  return value instanceof WebSocketProxyError;
}

/**
 * A failed opening handshake. For an upstream that answered with another status than 101
 * (`WSP_ERR_UPSTREAM_REJECTED`), `statusCode`, `headers` and `body` hold its response so that it can
 * be relayed to the client; for a rejected client request (`WSP_ERR_CLIENT_HANDSHAKE`), `statusCode`
 * is the status the client was answered with (400 or 426).
 */
export class HandshakeError extends WebSocketProxyError {
  /** HTTP status of the response, when there was one. */
  readonly statusCode: number | undefined;
  /** Response headers, when there was a response. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>> | undefined;
  /** Response body (at most the first 64 KiB), when there was a response. */
  readonly body: Buffer | undefined;

  /**
   * @param code - the error code
   * @param detail - appended to the table's message
   * @param response - the HTTP response that caused it, when there was one, and/or the `cause`
   */
  constructor(
    code: ErrorCode,
    detail?: string,
    response?: {
      statusCode?: number;
      headers?: Readonly<Record<string, string | string[] | undefined>>;
      body?: Buffer;
      cause?: unknown;
    },
  ) {
    super(code, detail, response?.cause === undefined ? undefined : { cause: response.cause });
    this.name = 'HandshakeError';
    this.statusCode = response?.statusCode;
    this.headers = response?.headers;
    this.body = response?.body;
  }
}
