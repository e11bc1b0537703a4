/**
 * Running fast-check properties the same way in every property spec: a run count that an
 * environment variable scales, a seed and a shrink path that environment variables replay, and a
 * failure message that says how to replay it.
 *
 * - `WSP_PROPERTY_RUNS=<factor>` multiplies each property's run count (e.g. 50 for a long run);
 * - `WSP_SEED=<seed>` starts from that seed, `WSP_PATH=<path>` goes straight to that counterexample
 *   (both printed by a failure); run the one test with mocha's `--grep` then.
 */
import fc from 'fast-check';

/** The run count of a property: `base` times `WSP_PROPERTY_RUNS` (at least 1). */
export function propertyRuns(base: number): number {
  const factor = Number(process.env['WSP_PROPERTY_RUNS'] ?? '1');
  if (!Number.isFinite(factor) || factor <= 0) throw new TypeError('WSP_PROPERTY_RUNS must be a positive number');
  return Math.max(1, Math.round(base * factor));
}

/** fast-check parameters: the run count, and the seed and path to replay when the environment gives them. */
export function propertyParameters<Ts>(base: number, extra: fc.Parameters<Ts> = {}): fc.Parameters<Ts> {
  // The error of the counterexample goes in the report itself, not only in its `cause`.
  const params: fc.Parameters<Ts> = { numRuns: propertyRuns(base), includeErrorInReport: true, ...extra };
  const seed = process.env['WSP_SEED'];
  if (seed !== undefined && seed !== '') {
    // fast-check seeds are 32-bit integers, negative ones included: take the printed value as is.
    const value = Number(seed);
    if (!Number.isInteger(value)) throw new TypeError('WSP_SEED must be an integer');
    params.seed = value;
    const path = process.env['WSP_PATH'];
    if (path !== undefined && path !== '') params.path = path;
  }
  return params;
}

/** The error of a failed property: fast-check's report, then the line that replays it. */
function failure<Ts>(details: fc.RunDetails<Ts>, report: string): Error {
  const path = details.counterexamplePath ?? '';
  return new Error(`${report}\n\nReplay: WSP_SEED=${details.seed} WSP_PATH=${path} npx mocha <spec> --grep '<test title>'`);
}

/**
 * Checks a synchronous property; on failure throws fast-check's report with the replay line.
 *
 * @param property - the property
 * @param params - see {@link propertyParameters}
 */
export function checkProperty<Ts>(property: fc.IProperty<Ts>, params: fc.Parameters<Ts>): void {
  const details = fc.check(property, params);
  if (details.failed) throw failure(details, fc.defaultReportMessage(details) ?? 'property failed');
}

/**
 * Checks an asynchronous property; on failure rejects with fast-check's report with the replay line.
 *
 * @param property - the property
 * @param params - see {@link propertyParameters}
 */
export async function checkAsyncProperty<Ts>(property: fc.IAsyncProperty<Ts>, params: fc.Parameters<Ts>): Promise<void> {
  const details = await fc.check(property, params);
  if (details.failed) throw failure(details, (await fc.asyncDefaultReportMessage(details)) ?? 'property failed');
}
