import type { Duplex } from 'node:stream';
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
      'pongFrame', 'closeFrame', 'CloseCode', 'Opcode', 'aggregate'] as const) {
      expect(pkg[name], name).to.not.equal(undefined);
      expect(pkg[name], name).to.equal(api[name]);
    }
    expect(pkg.closeFrame(1000, 'bye')).to.deep.equal({ type: 'close', fin: true, payload: Buffer.from('bye'), rsv1: false, code: 1000 });
  });

  it('exports the transforms from "ws-frame-proxy/transforms"', async () => {
    const transforms = (await import('ws-frame-proxy/transforms')) as { aggregate: unknown };
    expect(transforms.aggregate).to.equal(api.aggregate);
  });

  it('lets a FrameWritable end a pipeline() of either stream library (a compile-time check, run for its types)', () => {
    // Never called: tsc type-checks these calls, which is what the test is for.
    const wire = (socket: Duplex): void => {
      pipeline(new FrameReadable(socket, { role: 'server' }), aggregate(), new FrameWritable(socket, { role: 'client' }), () => {});
      nodePipeline(new FrameReadable(socket, { role: 'server' }), aggregate(), new FrameWritable(socket, { role: 'client' }), () => {});
    };
    expect(wire).to.be.a('function');
  });
});
