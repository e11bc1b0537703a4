/**
 * `--config FILE`: `createProxyServer` options from a JSON file, or from a module whose default
 * export is the options or a function (sync or async) returning them, for what JSON cannot hold:
 * hooks, `onFrame`, stage factories, target functions.
 *
 * @packageDocumentation
 */
import { readFile, stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ProxyServerOptions } from '../server/options.js';
import { UsageError } from './args.js';

/** What a config module's default export may be. */
export type ConfigExport = ProxyServerOptions | (() => ProxyServerOptions | Promise<ProxyServerOptions>);

const MODULE_EXTENSIONS = new Set(['.mjs', '.js', '.cjs']);

/**
 * Loads a config file. A module is imported (so its top-level code runs, once per process: with
 * `--workers`, in the primary, which checks it, and in each worker).
 *
 * @param file - the path, relative to `cwd` or absolute
 * @param cwd - the directory relative paths start from
 * @returns the options the file holds (not yet checked: `createProxyServer` does that)
 * @throws UsageError naming the file and why it cannot be used: missing, not JSON, an import that
 *   throws, no default export, a default export that is not an object or a function returning one
 */
export async function loadConfig(file: string, cwd: string = process.cwd()): Promise<ProxyServerOptions> {
  const path = resolve(cwd, file);
  const name = `--config ${JSON.stringify(file)}`;
  const extension = extname(path).toLowerCase();
  if (extension !== '.json' && !MODULE_EXTENSIONS.has(extension)) {
    throw new UsageError(`${name}: expected a .json, .mjs or .js file`);
  }
  const stats = await stat(path).catch((err: unknown) => {
    throw new UsageError(`${name}: cannot read it: ${describe(err)}`);
  });
  if (!stats.isFile()) throw new UsageError(`${name}: not a file`);
  const value = extension === '.json' ? await loadJson(path, name) : await loadModule(path, name);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`${name}: expected an object of createProxyServer options, got ${kind(value)}`);
  }
  return value as ProxyServerOptions;
}

async function loadJson(path: string, name: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`${name}: cannot read it: ${describe(err)}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`${name}: not valid JSON: ${(err as Error).message}`);
  }
}

async function loadModule(path: string, name: string): Promise<unknown> {
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(path).href)) as { default?: unknown };
  } catch (err) {
    throw new UsageError(`${name}: cannot load it: ${describe(err)}`);
  }
  const exported = module.default;
  if (exported === undefined) throw new UsageError(`${name}: has no default export (export default { routes: [...] })`);
  if (typeof exported !== 'function') return exported;
  try {
    return (await (exported as () => unknown)()) as unknown;
  } catch (err) {
    throw new UsageError(`${name}: its default export threw: ${describe(err)}`);
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return code === 'ENOENT' ? 'no such file' : err.message.split('\n', 1)[0]!;
  }
  return String(err);
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
