/**
 * The package's own version, for the CLI's `--version` and the `creator` of exported HAR files.
 *
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package's version, from the package.json above this module (dist/src/ or src/).
 *
 * @returns the version, e.g. `0.1.0`
 * @throws Error when no ws-frame-proxy package.json is found
 */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 5; depth++, dir = dirname(dir)) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (manifest.name === 'ws-frame-proxy' && typeof manifest.version === 'string') return manifest.version;
    } catch {
      // Not here: one level up.
    }
  }
  throw new Error('cannot find the package.json of ws-frame-proxy');
}
