/**
 * Command-line helpers shared by the benchmarks.
 */

/**
 * A reader of whole-number options that exits with the usage text on a bad value.
 *
 * @param help - the usage text printed with the error
 * @returns `int(name, value, min)`: the value as a number, at least `min`
 */
export function intReader(help: string): (name: string, value: string | undefined, min: number) => number {
  return (name, value, min) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min) {
      console.error(`--${name} must be an integer >= ${min}\n${help}`);
      process.exit(1);
    }
    return n;
  };
}
