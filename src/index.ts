/**
 * ws-frame-proxy: a frame-by-frame WebSocket reverse proxy on Node stream pipelines.
 *
 * Each direction is `FrameReadable -> [transforms] -> FrameWritable`; this module exports the frame
 * layer those pipelines are built from.
 *
 * @packageDocumentation
 */
export {
  type Frame,
  type FrameType,
  type PartialPayload,
  CloseCode,
  Opcode,
  binaryFrame,
  closeFrame,
  continuationFrame,
  isControlType,
  isValidCloseCode,
  pingFrame,
  pongFrame,
  textFrame,
} from './frame.js';
export { ErrorCodes, type ErrorCode, HandshakeError, WebSocketProxyError, isWebSocketProxyError } from './errors.js';
export {
  FrameReadable,
  type FrameReadableOptions,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_HIGH_WATER_MARK_BYTES,
  DEFAULT_READABLE_HIGH_WATER_MARK,
  PARTIAL_FRAME_MIN,
} from './streams/frame-readable.js';
export {
  FrameWritable,
  type FrameWritableOptions,
  DEFAULT_CLOSE_TIMEOUT,
  DEFAULT_WRITABLE_HIGH_WATER_MARK,
  transferPayload,
} from './streams/frame-writable.js';
export { FrameParser, type FrameParserOptions, type Role } from './protocol/parser.js';
export { encodeFrame, MAX_CONTROL_PAYLOAD, MAX_CLOSE_REASON, MASK_IN_PLACE_MIN } from './protocol/encode.js';
export { type GenerateMask, hasNativeMask } from './protocol/mask.js';
export { Utf8Validator, isValidUtf8 } from './protocol/utf8.js';
export {
  type DeflateParameters,
  type PerMessageDeflateOption,
  type PerMessageDeflateSettings,
  DEFLATE_DEFAULTS,
} from './protocol/deflate.js';
export * from './transforms/index.js';
export {
  WebSocketProxy,
  ENDINGS,
  type CloseInfo,
  type ConnectOptions,
  type Ending,
  type EndingRule,
  type ProxySide,
  type ProxySummary,
  type Reply,
  type SideState,
  type SideSummary,
} from './proxy/websocket-proxy.js';
export {
  type Logger,
  type OnFrame,
  type OnFrameResult,
  type ProxyOptions,
  type ProxyRole,
  type ProxyTransforms,
  type StageList,
  PROXY_DEFAULTS,
} from './proxy/options.js';
export {
  connectUpstream,
  type ConnectUpstreamOptions,
  type UpstreamConnection,
  type UpstreamOptions,
} from './handshake/upstream.js';
export {
  acceptClient,
  validateClientRequest,
  writeHttpResponse,
  RESPONSE_FLUSH_TIMEOUT,
  type AcceptClientOptions,
  type AcceptedClient,
  type ClientRequestCheck,
  type ValidClientRequest,
  type InvalidClientRequest,
  type ValidateClientRequestOptions,
} from './handshake/client.js';
export {
  forwardedHeaders,
  type ForwardedHeaders,
  type ForwardedHeadersOptions,
  DEFAULT_MAX_FORWARDED_HEADERS,
  DEFAULT_MAX_FORWARDED_HEADER_BYTES,
} from './handshake/headers.js';
export {
  ProxyServer,
  createProxyServer,
  type DrainOptions,
  type DrainResult,
  type ProxyServerEvents,
  type RefusalInfo,
} from './server/proxy-server.js';
export {
  type AuthorizeResult,
  type ProxyServerOptions,
  type Refusal,
  type ServerTransforms,
  type StageFactory,
  type UpstreamTlsOptions,
  DEFAULT_HANDSHAKE_TIMEOUT,
} from './server/options.js';
export { type Route, type RouteParams, type RouteTarget } from './server/routes.js';
export { HANDSHAKE_DURATION_BUCKETS, CONNECTION_DURATION_BUCKETS } from './server/metrics.js';
export {
  Inspector,
  inspector,
  type InspectorOptions,
  type TrackInfo,
  INSPECTOR_DEFAULTS,
  type Breakpoint,
  type ConnectionInfo,
  type ConnectionStats,
  type HeldAction,
  type HeldMessage,
  type InspectorEvents,
  type MessageDetail,
  type MessageRow,
  type SideStats,
} from './inspector/index.js';
// Recording and replay (issue 9): the record() stage comes with the transforms above.
export {
  RECORDING_FORMAT,
  RECORDING_VERSION,
  frameFromRecord,
  parseRecording,
  recordFrame,
  recordingHeader,
  toJsonLine,
  type ParsedRecording,
  type RecordMeta,
  type RecordedFrame,
  type RecordedSide,
  type RecordingHeader,
  type RecordingSummary,
} from './record/format.js';
export { RecordingRing, DEFAULT_RING_MAX_BYTES, type RecordingRingOptions } from './record/ring.js';
export { type RecordStream } from './record/sink.js';
export { toHar, type Har, type HarEntry, type HarNameValue, type HarOptions, type HarSource, type HarWebSocketMessage } from './record/har.js';
export { replay, ReplayStream, type ReplayOptions, type ReplaySource, type ReplayTiming } from './record/replay.js';
