/**
 * `redact()`: secrets masked in text messages, by pattern anywhere in the text and by property name
 * in JSON, before they reach the other side.
 *
 * @packageDocumentation
 */
import { WebSocketProxyError } from '../errors.js';
import type { Frame } from '../frame.js';
import { MessageStage, type MessageStageOptions, type StageOutput, checkOptionsObject } from './stage.js';

/** Default {@link RedactOptions.replacement}. */
export const DEFAULT_REDACTION = '[REDACTED]';

/** Options of {@link redact}; at least one non-empty `patterns` or `keys` is required. */
export interface RedactOptions extends MessageStageOptions {
  /**
   * What to mask in text: a RegExp (every match is replaced, whether or not it has the `g` flag; the
   * caller's RegExp is never used nor its `lastIndex` touched) or a string (every literal occurrence;
   * not empty). Applied in order, each to the result of the one before. In a JSON message they apply
   * to each string value on its own, as decoded (never to property names, numbers or the raw text).
   * Empty matches (e.g. of `/a?/`) are left alone.
   * @defaultValue none
   */
  patterns?: RegExp | string | readonly (RegExp | string)[];
  /**
   * Property names whose VALUE is replaced by `replacement`, whatever it is (string, number, object,
   * array), at any depth of a JSON message, inside arrays too. Names compare exactly (case matters).
   * @defaultValue none
   */
  keys?: readonly string[];
  /**
   * What replaces each match and each value of a listed key. Inserted literally: `$&`, `$1` have no
   * special meaning.
   * @defaultValue `'[REDACTED]'`
   */
  replacement?: string;
}

/** A pattern as a global RegExp of our own (string patterns escaped), built once at factory time. */
function toGlobalRegExp(pattern: unknown, index: number): RegExp {
  if (pattern instanceof RegExp) {
    // A clone: the caller's RegExp keeps its lastIndex, and `g` makes replace() take every match.
    return new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
  }
  if (typeof pattern === 'string' && pattern !== '') {
    return new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g');
  }
  throw new TypeError(`options.patterns[${index}] must be a RegExp or a non-empty string`);
}

function checkPatterns(value: unknown): RegExp[] {
  if (value === undefined) return [];
  if (value instanceof RegExp || typeof value === 'string') return [toGlobalRegExp(value, 0)];
  if (!Array.isArray(value)) throw new TypeError('options.patterns must be a RegExp, a string or an array of them');
  return value.map(toGlobalRegExp);
}

function checkKeys(value: unknown): Set<string> {
  if (value === undefined) return new Set();
  if (!Array.isArray(value) || !value.every((key) => typeof key === 'string')) {
    throw new TypeError('options.keys must be an array of strings');
  }
  return new Set(value as string[]);
}

/** JSON's insignificant whitespace (RFC 8259 section 2): space, tab, LF, CR. */
function isJsonSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

/**
 * Whether a payload may be a JSON object or array: its first non-whitespace byte is `{` or `[`.
 * Only those can hold keys; anything else is treated as plain text without paying for a failed
 * `JSON.parse`.
 */
function looksLikeJsonContainer(payload: Buffer): boolean {
  let i = 0;
  while (i < payload.length && isJsonSpace(payload[i]!)) i++;
  return payload[i] === 0x7b || payload[i] === 0x5b;
}

type JsonContainer = unknown[] | Record<string, unknown>;

/**
 * `JSON.stringify` without recursion, for values nested too deeply for it (V8 gives up at a few
 * thousand levels): same output, an explicit stack instead of the call stack. Only for parsed JSON
 * (no `toJSON`, no undefined, no functions).
 */
function stringifyDeep(root: unknown): string {
  const out: string[] = [];
  const open: { node: JsonContainer; keys: string[] | undefined; next: number }[] = [];
  const write = (value: unknown): void => {
    if (typeof value !== 'object' || value === null) {
      out.push(JSON.stringify(value));
    } else if (Array.isArray(value)) {
      out.push('[');
      open.push({ node: value, keys: undefined, next: 0 });
    } else {
      out.push('{');
      open.push({ node: value as Record<string, unknown>, keys: Object.keys(value), next: 0 });
    }
  };
  write(root);
  while (open.length > 0) {
    const top = open[open.length - 1]!;
    const { node, keys } = top;
    if (top.next === (keys === undefined ? (node as unknown[]).length : keys.length)) {
      out.push(keys === undefined ? ']' : '}');
      open.pop();
      continue;
    }
    if (top.next > 0) out.push(',');
    const index = top.next++;
    if (keys === undefined) {
      write((node as unknown[])[index]);
    } else {
      out.push(JSON.stringify(keys[index]), ':');
      write((node as Record<string, unknown>)[keys[index]!]);
    }
  }
  return out.join('');
}

/** `JSON.stringify`, falling back to {@link stringifyDeep} when the value is nested too deeply. */
function stringify(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (err) {
    if (err instanceof RangeError) return stringifyDeep(value);
    throw err;
  }
}

/**
 * The stage behind {@link redact}; use the factory.
 */
export class RedactStage extends MessageStage {
  private readonly rules: readonly RegExp[];
  private readonly keys: ReadonlySet<string>;
  private readonly replacement: string;
  /** One replacer for every rule: the replacement as it is, and empty matches left empty. */
  private readonly replacer: (match: string) => string;

  /** @param options - see {@link RedactOptions} */
  constructor(options: RedactOptions = {}) {
    checkOptionsObject(options);
    super(options);
    this.rules = checkPatterns(options.patterns);
    this.keys = checkKeys(options.keys);
    if (this.rules.length === 0 && this.keys.size === 0) {
      throw new TypeError('options.patterns or options.keys must list something to redact');
    }
    const replacement = options.replacement ?? DEFAULT_REDACTION;
    if (typeof replacement !== 'string') throw new TypeError('options.replacement must be a string');
    this.replacement = replacement;
    this.replacer = (match) => (match === '' ? '' : replacement);
  }

  /** @internal */
  protected handleMessage(message: Frame): StageOutput {
    if (message.type === 'binary') return message;
    if (message.rsv1) {
      // Compressed by an extension: the bytes are not the text, and passing them would leak it.
      throw new WebSocketProxyError('WSP_ERR_STAGE_FAILED', 'redact() cannot read a compressed (RSV1) message');
    }
    const json = looksLikeJsonContainer(message.payload);
    if (!json && this.rules.length === 0) return message;
    const text = message.payload.toString('utf8');
    const redacted = (json ? this.redactJson(text) : undefined) ?? this.scrub(text);
    // Nothing matched: the very frame, byte for byte (no re-serialization, no re-encoding).
    if (redacted === text) return message;
    return { type: message.type, fin: true, payload: Buffer.from(redacted, 'utf8'), rsv1: false };
  }

  /** Applies every pattern to a string. */
  private scrub(text: string): string {
    let out = text;
    for (const rule of this.rules) out = out.replace(rule, this.replacer);
    return out;
  }

  /**
   * Redacts a JSON text: the listed keys' values and the patterns in string values.
   *
   * @returns the re-serialized JSON, the text itself when nothing changed, or undefined when the
   *   text is not JSON (the caller then treats it as plain text)
   */
  private redactJson(text: string): string | undefined {
    let root: unknown;
    try {
      root = JSON.parse(text);
    } catch {
      return undefined;
    }
    let changed = false;
    const visit = (value: unknown): unknown => {
      if (typeof value === 'string') {
        const out = this.scrub(value);
        if (out !== value) changed = true;
        return out;
      }
      if (typeof value === 'object' && value !== null) pending.push(value as JsonContainer);
      return value;
    };
    // An explicit stack, not recursion: a deeply nested message must not overflow the call stack.
    // The parsed value is ours, so it is rewritten in place (JSON.parse made every key an own data
    // property, '__proto__' included, so plain assignment sets that property).
    const pending: JsonContainer[] = [];
    visit(root);
    while (pending.length > 0) {
      const node = pending.pop()!;
      if (Array.isArray(node)) {
        for (let i = 0; i < node.length; i++) node[i] = visit(node[i]);
        continue;
      }
      for (const key of Object.keys(node)) {
        if (this.keys.has(key)) {
          // Already the replacement: no change, so an already redacted message stays byte-exact.
          if (node[key] !== this.replacement) {
            node[key] = this.replacement;
            changed = true;
          }
        } else {
          node[key] = visit(node[key]);
        }
      }
    }
    return changed ? stringify(root) : text;
  }
}

/**
 * A stage that masks secrets in text messages. Fragmented messages are assembled first (within
 * `maxMessageSize`), so no fragment slips past unredacted.
 *
 * - A text message whose first non-whitespace character is `{` or `[` and that parses as JSON: the
 *   value of every property named in `keys` (at any depth, inside arrays too) becomes `replacement`,
 *   and `patterns` apply to every string value; if anything changed the message is re-serialized
 *   with `JSON.stringify` (compact: the original spacing is lost, and so is the precision of integers
 *   beyond 2^53 anywhere in it; of duplicate keys the last stays).
 * - Any other text message (plain text, or JSON scalars such as `"..."` and `42`, or text that fails
 *   to parse): `patterns` apply to the whole text; `keys` do not apply.
 * - A message in which nothing changed passes as the very same frame, byte for byte.
 * - Binary messages and control frames pass unchanged. A text message with RSV1 set (compressed by
 *   an extension) cannot be read and fails the stage with `WSP_ERR_STAGE_FAILED`.
 *
 * The output of a rewritten message is one frame with FIN set.
 *
 * ```ts
 * new WebSocketProxy({
 *   transforms: { client: [redact({ keys: ['password', 'token'], patterns: [/\b\d{16}\b/] })] },
 * });
 * // {"user":"ann","password":"hunter2"}  ->  {"user":"ann","password":"[REDACTED]"}
 * ```
 *
 * @param options - see {@link RedactOptions}
 * @returns a {@link RedactStage}, for one direction of one connection
 * @throws TypeError for an invalid option, or when neither `patterns` nor `keys` lists anything
 */
export function redact(options: RedactOptions): RedactStage {
  return new RedactStage(options);
}
