/**
 * Command-line helpers shared by the benchmarks: each bench declares its options and defaults, and
 * {@link benchArgs} does the rest (parsing, `--help`, and the checks that exit with the usage text).
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** A reader of whole-number options: the value as a number, at least `min`, or exit with the usage text. */
export type IntReader = (name: string, value: string | undefined, min: number) => number;

/** Prints `message` and the usage text on stderr and exits with status 1. */
export function usageError(message: string, help: string): never {
  console.error(`${message}\n${help}`);
  process.exit(1);
}

/**
 * A reader of whole-number options that exits with the usage text on a bad value.
 *
 * @param help - the usage text printed with the error
 * @returns `int(name, value, min)`: the value as a number, at least `min`
 */
export function intReader(help: string): IntReader {
  return (name, value, min) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min) usageError(`--${name} must be an integer >= ${min}`, help);
    return n;
  };
}

/** The parsed values of a bench's options. */
type Values<O extends NonNullable<ParseArgsConfig['options']>> = ReturnType<typeof parseArgs<{ options: O; strict: true }>>['values'];

/** What {@link benchArgs} gives a bench: its parsed values and the checks that exit on a bad one. */
export interface BenchArgs<V> {
  /** The parsed option values (defaults applied). */
  values: V;
  /** Reads a whole-number option (see {@link intReader}). */
  int: IntReader;
  /**
   * Checks an option made of letters (`--rows bcd`): each one of `allowed`, at least one unless
   * `allowEmpty`.
   *
   * @returns the value
   */
  letters(name: string, value: string | undefined, allowed: string, allowEmpty?: boolean): string;
  /**
   * Checks an option that takes one of a few words.
   *
   * @returns the value
   */
  oneOf<T extends string>(name: string, value: string | undefined, choices: readonly T[]): T;
}

/** The option every bench has. */
const HELP_OPTION = { help: { type: 'boolean', default: false } } as const;

/**
 * Parses the process's arguments against a bench's options and `--help` (strict: an unknown option
 * exits with the usage text), prints the usage text and exits on `--help`.
 *
 * @param help - the usage text
 * @param options - the bench's options, with their defaults
 * @returns the values and the checks
 */
export function benchArgs<O extends NonNullable<ParseArgsConfig['options']>>(help: string, options: O): BenchArgs<Values<O>> {
  let parsed: ReturnType<typeof parseArgs<{ options: O; strict: true }>>;
  try {
    parsed = parseArgs({ options: { ...options, ...HELP_OPTION }, strict: true });
  } catch (err) {
    usageError((err as Error).message, help);
  }
  const values = parsed.values;
  // `help` is not among the bench's own options' types, but parsed with them.
  if ((values as { help?: boolean }).help === true) {
    console.log(help);
    process.exit(0);
  }
  const args: BenchArgs<Values<O>> = {
    values,
    int: intReader(help),
    letters(name, value, allowed, allowEmpty = false) {
      if (value === undefined || (value === '' && !allowEmpty) || ![...value].every((c) => allowed.includes(c))) {
        usageError(`--${name} takes letters of ${allowed}`, help);
      }
      return value;
    },
    oneOf(name, value, choices) {
      const choice = choices.find((c) => c === value);
      if (choice === undefined) usageError(`--${name} takes ${choices.join(', ')}`, help);
      return choice;
    },
  };
  return args;
}

/** A space-separated list (`--proxy-flags '--a --b'`) as its words. */
export function words(value: string | undefined): string[] {
  return (value ?? '').split(' ').filter((w) => w !== '');
}
