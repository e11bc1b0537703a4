/**
 * `--record DIR`: one JSONL recording per connection in DIR (both directions in one file), each
 * bounded by `--record-max-bytes`, through the `record()` stage.
 *
 * @packageDocumentation
 */
import cluster from 'node:cluster';
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServerTransforms, StageFactory } from '../server/options.js';
import { record } from '../transforms/record.js';
import type { StageContext } from '../transforms/stage.js';
import { UsageError } from './args.js';

/**
 * Creates the directory if needed and checks that files can be made in it.
 *
 * @param dir - `--record`'s value
 * @throws UsageError naming the flag when it cannot be created or written to
 */
export async function prepareRecordDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (err) {
    throw new UsageError(`--record ${JSON.stringify(dir)}: cannot write there: ${(err as Error).message}`);
  }
}

/** Characters kept from a connection id in a file name. */
const UNSAFE = /[^A-Za-z0-9_.-]/g;

/**
 * The file a connection is recorded to: `<time>-<id>.jsonl`, the time of its first stage in UTC
 * (`20261201T153352.123Z`, so that names sort by time), in a cluster worker `<time>-<pid>-<id>.jsonl`
 * (ids are counted per process).
 *
 * @param dir - the directory
 * @param id - the connection's id
 * @param now - the time
 */
export function recordingFileName(dir: string, id: string, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '');
  const worker = cluster.isWorker ? `${process.pid}-` : '';
  return join(dir, `${stamp}-${worker}${id.replace(UNSAFE, '_')}.jsonl`);
}

/**
 * Adds a `record()` stage in front of each direction's stages (so that what each side sent is
 * recorded, after `--aggregate`, before the config's stages), both directions of a connection
 * writing to the same file. Transforms that are not what the server takes are returned as they
 * are, for the server to reject by name.
 *
 * @param transforms - the stage factories so far, if any
 * @param dir - `--record`'s directory
 * @param maxBytes - `--record-max-bytes`, per file; the recording stops there
 * @defaultValue maxBytes: no bound
 */
export function withRecording(transforms: ServerTransforms | undefined, dir: string, maxBytes?: number): ServerTransforms | undefined {
  if (transforms !== undefined && (transforms === null || typeof transforms !== 'object')) return transforms;
  // The first direction to make its stages names the file; the other finds it here. Keyed by the
  // proxy, so that nothing outlives the connection.
  const files = new WeakMap<object, string>();
  const fileOf = (context: StageContext): string => {
    const key = context.proxy;
    let file = key === undefined ? undefined : files.get(key);
    if (file === undefined) {
      file = recordingFileName(dir, context.id, new Date());
      if (key !== undefined) files.set(key, file);
    }
    return file;
  };
  const options = maxBytes === undefined ? {} : { maxBytes };
  const wrap = (user: StageFactory | undefined): StageFactory | undefined => {
    if (user !== undefined && typeof user !== 'function') return user;
    return (context) => [record(fileOf(context), options), ...(user === undefined ? [] : user(context))];
  };
  return { ...transforms, client: wrap(transforms?.client), upstream: wrap(transforms?.upstream) };
}
