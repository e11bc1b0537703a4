/**
 * The live inspector: `inspector({ server })` serves a web page over a proxy's connections.
 *
 * @packageDocumentation
 */
export { Inspector, inspector } from './inspector.js';
export { type InspectorOptions, INSPECTOR_DEFAULTS } from './options.js';
export type {
  Breakpoint,
  ConnectionInfo,
  ConnectionStats,
  HeldAction,
  HeldMessage,
  InspectorEvents,
  MessageDetail,
  MessageRow,
  SideStats,
  TrackInfo,
} from './types.js';
