/**
 * Reusable stream stages for a direction's pipeline (object-mode `Transform`s of `Frame`),
 * importable as `ws-frame-proxy/transforms`, and the contract between a proxy and its stages.
 *
 * @packageDocumentation
 */
export { aggregate, AggregateTransform, type AggregateOptions, DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_MESSAGE_SIZE, MessageAssembler } from './aggregate.js';
export {
  FrameStage,
  MessageStage,
  STANDALONE_CONTEXT,
  kStageContext,
  setStageContext,
  type ContextualStage,
  type MessageStageOptions,
  type Stage,
  type StageContext,
  type StageOptions,
  type StageOutput,
} from './stage.js';
export { map, mapJson, mapText, MapStage, MapJsonStage, MapTextStage, type ControlOption, type MapFn, type MapJsonFn, type MapOptions, type MapTextFn } from './map.js';
export { filter, FilterStage, type FilterFn, type FilterOptions } from './filter.js';
export { tap, TapStage, type TapFn, type TapOptions } from './tap.js';
export { compose, ComposedStage } from './compose.js';
export { fragment, FragmentStage, type FragmentOptions } from './fragment.js';
export { log, LogStage, type FrameLogger, type FrameLogMethod, type FrameLogRecord, type LogLevel, type LogOptions } from './log.js';
export { metrics, MetricsStage, DEFAULT_METRICS_PREFIX, MESSAGE_SIZE_BUCKETS, type MetricsOptions, type MetricsRegistry } from './metrics.js';
export { redact, RedactStage, DEFAULT_REDACTION, type RedactOptions } from './redact.js';
export {
  validateJson,
  ValidateJsonStage,
  type ValidateJsonOptions,
  type JsonSchema,
  type JsonSchemaCompiler,
  type JsonSchemaError,
  type JsonValidateFunction,
} from './validate-json.js';
export { sizeLimit, SizeLimitStage, type SizeLimitOptions } from './size-limit.js';
export { rateLimit, RateLimitStage, type RateLimitOptions } from './rate-limit.js';
export { record, RecordStage, DEFAULT_RECORD_MAX_PENDING_BYTES, type RecordOptions, type RecordSink } from './record.js';
