/**
 * Reusable stream stages for a direction's pipeline (object-mode `Transform`s of `Frame`),
 * importable as `ws-frame-proxy/transforms`.
 *
 * @packageDocumentation
 */
export { aggregate, AggregateTransform, type AggregateOptions, DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_MESSAGE_SIZE } from './aggregate.js';
