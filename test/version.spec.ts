import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { packageVersion } from '../src/version.js';

describe('version', () => {
  it('packageVersion reads the version from the package.json above the module', () => {
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(packageVersion()).to.equal(manifest.version);
  });
});
