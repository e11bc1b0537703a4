import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pipeline as nodePipeline } from 'node:stream';
import { expect } from 'chai';
import { pipeline } from 'readable-stream';
import * as api from '../src/index.js';
import { FrameReadable, FrameWritable, aggregate } from '../src/index.js';

describe('package entry points', () => {
  it('exports the frame layer, the error table and the frame constructors from "ws-frame-proxy"', async () => {
    // Self-reference through package.json "exports": what a user's import resolves to.
    const pkg = (await import('ws-frame-proxy')) as typeof api;
    for (const name of ['FrameReadable', 'FrameWritable', 'WebSocketProxy', 'ErrorCodes', 'WebSocketProxyError',
      'HandshakeError', 'isWebSocketProxyError', 'textFrame', 'binaryFrame', 'continuationFrame', 'pingFrame',
      'pongFrame', 'closeFrame', 'CloseCode', 'Opcode', 'aggregate', 'createProxyServer', 'inspector', 'Inspector',
      'toHar', 'replay', 'RecordingRing', 'parseRecording'] as const) {
      expect(pkg[name], name).to.not.equal(undefined);
      expect(pkg[name], name).to.equal(api[name]);
    }
    expect(pkg.closeFrame(1000, 'bye')).to.deep.equal({ type: 'close', fin: true, payload: Buffer.from('bye'), rsv1: false, code: 1000 });
  });

  it('exports the transforms from "ws-frame-proxy/transforms"', async () => {
    const transforms = (await import('ws-frame-proxy/transforms')) as Record<string, unknown>;
    for (const name of ['aggregate', 'map', 'mapText', 'mapJson', 'filter', 'tap', 'compose', 'fragment', 'redact',
      'validateJson', 'sizeLimit', 'rateLimit', 'log', 'metrics', 'record', 'FrameStage', 'MessageStage', 'kStageContext'] as const) {
      expect(transforms[name], name).to.be.a(name === 'kStageContext' ? 'symbol' : 'function');
      expect(transforms[name], name).to.equal(api[name]);
    }
  });

  it('lets a FrameWritable end a pipeline() of either stream library (a compile-time check, run for its types)', () => {
    // Never called: tsc type-checks these calls, which is what the test is for.
    const wire = (socket: Duplex): void => {
      pipeline(new FrameReadable(socket, { role: 'server' }), aggregate(), new FrameWritable(socket, { role: 'client' }), () => {});
      nodePipeline(new FrameReadable(socket, { role: 'server' }), aggregate(), new FrameWritable(socket, { role: 'client' }), () => {});
    };
    expect(wire).to.be.a('function');
  });

  it('declares as dependencies the @types packages its emitted .d.ts files import, and nothing else from devDependencies', () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const imported = new Set<string>();
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        // The CLI's modules are no entry point (package.json "exports"): no consumer compiles against them.
        if (entry.isDirectory()) {
          if (path !== join(root, 'dist', 'src', 'cli')) walk(path);
        }
        else if (entry.name.endsWith('.d.ts')) {
          for (const match of readFileSync(path, 'utf8').matchAll(/from '([^'.][^']*)'/g)) imported.add(match[1]!);
        }
      }
    };
    walk(join(root, 'dist', 'src'));
    expect(imported.size).to.be.above(0);
    for (const specifier of imported) {
      if (specifier.startsWith('node:')) {
        expect(pkg.dependencies['@types/node'], specifier).to.be.a('string');
        continue;
      }
      const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
      expect(pkg.dependencies[name], `${name} must be a dependency`).to.be.a('string');
      const types = name.startsWith('@') ? `@types/${name.slice(1).replace('/', '__')}` : `@types/${name}`;
      // A package without bundled types needs its @types package at run time of the consumer's tsc.
      if (pkg.devDependencies[types] !== undefined || pkg.dependencies[types] !== undefined) {
        expect(pkg.dependencies[types], `${types} must be a dependency, not a devDependency`).to.be.a('string');
      }
    }
  });
});
