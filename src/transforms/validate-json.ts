/**
 * `validateJson()`: text messages checked against a JSON Schema (with ajv, an optional peer
 * dependency), the sender closed with 1007 on the first one that does not match.
 *
 * ajv's types are deliberately not imported: the emitted .d.ts may only name packages listed in
 * `dependencies`, and ajv is an optional peer. {@link JsonSchemaCompiler} describes the little of an
 * Ajv instance that is used, structurally.
 *
 * @packageDocumentation
 */
import { createRequire } from 'node:module';
import { WebSocketProxyError } from '../errors.js';
import type { Frame } from '../frame.js';
import { MessageStage, type MessageStageOptions, type StageOutput, checkOptionsObject, toError } from './stage.js';

/** A JSON Schema: an object, or `true`/`false`. */
export type JsonSchema = object | boolean;

/** One validation error, as ajv reports it (only the fields used here). */
export interface JsonSchemaError {
  /** JSON Pointer to the failing value, e.g. `/user/name` (empty for the root). */
  instancePath?: string;
  /** What is wrong, e.g. `must be string`. */
  message?: string;
}

/**
 * A compiled schema: returns whether `data` matches and leaves the reasons in `errors`; or, for an
 * asynchronous schema (`$async: true`), returns a promise that rejects with an error holding
 * `errors` when it does not match.
 */
export interface JsonValidateFunction {
  (data: unknown): boolean | PromiseLike<unknown>;
  /** The errors of the last call, or null/undefined after a match. */
  errors?: readonly JsonSchemaError[] | null;
}

/** What {@link ValidateJsonOptions.ajv} must offer: an Ajv 8 instance fits. */
export interface JsonSchemaCompiler {
  /** Compiles a schema; throws for an invalid one. */
  compile(schema: JsonSchema): JsonValidateFunction;
  /** Formats errors as one line; when absent, `<instancePath> <message>` joined by `, ` is used. */
  errorsText?(errors?: readonly JsonSchemaError[] | null): string;
}

/** Options of {@link validateJson}. */
export interface ValidateJsonOptions extends MessageStageOptions {
  /** The JSON Schema every text message must match. Compiled once, by the factory. */
  schema: JsonSchema;
  /**
   * The instance that compiles `schema`, for formats, custom keywords or ajv options (e.g.
   * `new Ajv({ allErrors: true })` with `ajv-formats` added). Without it, `ajv` is loaded (it must
   * be installed: `npm install ajv`) and a default `new Ajv()` compiles each schema object once per
   * process: define the schema once, outside a per-connection options factory, to reuse it.
   * @defaultValue a default Ajv 8 instance
   */
  ajv?: JsonSchemaCompiler;
  /**
   * What to do with binary messages: `'pass'` them unchecked, or `'reject'` them like an invalid
   * text message.
   * @defaultValue `'pass'`
   */
  binary?: 'pass' | 'reject';
}

/** Most schema errors quoted in a failure's detail. */
const MAX_QUOTED_ERRORS = 3;

const requireHere = createRequire(import.meta.url);

/** Default-compiled validators by schema object: a schema reused across connections compiles once. */
const defaultCompiled = new WeakMap<object, { validate: JsonValidateFunction; compiler: JsonSchemaCompiler }>();

/**
 * Loads ajv's constructor, synchronously, only when needed.
 *
 * @internal
 * @param load - the `require` to load with (tests pass one that fails)
 * @throws TypeError telling to install ajv when it is not installed
 */
export function loadAjv(load: (id: string) => unknown = requireHere): new () => JsonSchemaCompiler {
  let mod: unknown;
  try {
    mod = load('ajv');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') {
      throw new TypeError('validateJson() needs ajv, an optional peer dependency: npm install ajv (or pass options.ajv)', { cause: err });
    }
    throw err;
  }
  // ajv is CommonJS: module.exports is the class, also exported as `default`.
  return ((mod as { default?: unknown }).default ?? mod) as new () => JsonSchemaCompiler;
}

function compileWith(compiler: JsonSchemaCompiler, schema: JsonSchema): JsonValidateFunction {
  try {
    return compiler.compile(schema);
  } catch (err) {
    throw new TypeError(`options.schema is invalid: ${toError(err).message}`, { cause: err });
  }
}

function compileDefault(schema: JsonSchema): { validate: JsonValidateFunction; compiler: JsonSchemaCompiler } {
  const cached = typeof schema === 'object' ? defaultCompiled.get(schema) : undefined;
  if (cached !== undefined) return cached;
  const Ajv = loadAjv();
  // An instance per schema object: two schema objects with the same $id never collide, and nothing
  // compiled outlives its schema.
  const compiler = new Ajv();
  const entry = { validate: compileWith(compiler, schema), compiler };
  if (typeof schema === 'object') defaultCompiled.set(schema, entry);
  return entry;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * The stage behind {@link validateJson}; use the factory.
 */
export class ValidateJsonStage extends MessageStage {
  private readonly validate: JsonValidateFunction;
  private readonly compiler: JsonSchemaCompiler;
  private readonly rejectBinary: boolean;

  /** @param options - see {@link ValidateJsonOptions} */
  constructor(options: ValidateJsonOptions) {
    checkOptionsObject(options);
    if (options === undefined) throw new TypeError('options.schema must be a JSON schema (an object or a boolean)');
    super(options);
    const { schema, ajv, binary = 'pass' } = options;
    if ((typeof schema !== 'object' || schema === null) && typeof schema !== 'boolean') {
      throw new TypeError('options.schema must be a JSON schema (an object or a boolean)');
    }
    if (binary !== 'pass' && binary !== 'reject') throw new TypeError("options.binary must be 'pass' or 'reject'");
    this.rejectBinary = binary === 'reject';
    if (ajv === undefined) {
      ({ validate: this.validate, compiler: this.compiler } = compileDefault(schema));
    } else {
      if (typeof ajv !== 'object' || ajv === null || typeof ajv.compile !== 'function') {
        throw new TypeError('options.ajv must be an Ajv instance (an object with a compile() method)');
      }
      this.compiler = ajv;
      this.validate = compileWith(ajv, schema);
    }
  }

  /** @internal */
  protected handleMessage(message: Frame): StageOutput | PromiseLike<StageOutput> {
    if (message.type === 'binary') {
      if (this.rejectBinary) throw new WebSocketProxyError('WSP_ERR_VALIDATION_FAILED', 'binary message refused');
      return message;
    }
    if (message.rsv1) {
      // Compressed by an extension: these bytes are not the text, and passing them unchecked would
      // defeat the stage.
      throw new WebSocketProxyError('WSP_ERR_STAGE_FAILED', 'validateJson() cannot read a compressed (RSV1) message');
    }
    let data: unknown;
    try {
      data = JSON.parse(message.payload.toString('utf8'));
    } catch {
      // Not the parser's message: it quotes the payload, which has no place in a close reason or a log.
      throw new WebSocketProxyError('WSP_ERR_VALIDATION_FAILED', 'not JSON');
    }
    const validate = this.validate;
    const result = validate(data);
    if (!isPromiseLike(result)) {
      if (result) return message;
      throw this.failure(validate.errors);
    }
    return Promise.resolve(result).then(
      () => message,
      (err: unknown) => {
        // ajv's ValidationError carries `errors`; anything else is a failure of the schema's code.
        const errors = (err as { errors?: unknown } | null)?.errors;
        throw Array.isArray(errors) ? this.failure(errors as JsonSchemaError[]) : toError(err);
      },
    );
  }

  /** The error for a message that does not match, quoting the first few schema errors. */
  private failure(errors: readonly JsonSchemaError[] | null | undefined): WebSocketProxyError {
    const quoted = (errors ?? []).slice(0, MAX_QUOTED_ERRORS);
    let detail: string;
    if (quoted.length === 0) detail = 'does not match the schema';
    else if (typeof this.compiler.errorsText === 'function') detail = this.compiler.errorsText(quoted);
    else detail = quoted.map((e) => `${e.instancePath === undefined || e.instancePath === '' ? 'data' : e.instancePath} ${e.message ?? 'is invalid'}`).join(', ');
    return new WebSocketProxyError('WSP_ERR_VALIDATION_FAILED', detail);
  }
}

/**
 * A stage that lets through only text messages that are JSON matching `schema`. Fragmented
 * messages are assembled first (within `maxMessageSize`), so no part of an invalid message is
 * passed on. The first text message that is not JSON or does not match fails the stage with
 * `WebSocketProxyError('WSP_ERR_VALIDATION_FAILED', detail)` (close code 1007: a proxy closes the
 * sender with 1007 and its peer with 1001); the detail is ajv's text for the first errors, never the
 * payload. Binary messages pass unless `binary: 'reject'`; control frames always pass. Messages are
 * checked one at a time, so order is kept, asynchronous schemas included.
 *
 * ajv is an optional peer dependency, loaded synchronously the first time a factory needs it.
 *
 * ```ts
 * const schema = { type: 'object', required: ['op'], properties: { op: { type: 'string' } } };
 * new WebSocketProxy({ transforms: { client: [validateJson({ schema })] } });
 * // '{"op":"subscribe"}' passes; 'hello' or '{"op":1}' -> client closed with 1007, upstream 1001
 * ```
 *
 * @param options - see {@link ValidateJsonOptions}
 * @returns a {@link ValidateJsonStage}, for one direction of one connection
 * @throws TypeError for an invalid option or schema (with ajv's message), or when ajv is needed and
 *   not installed
 */
export function validateJson(options: ValidateJsonOptions): ValidateJsonStage {
  return new ValidateJsonStage(options);
}
