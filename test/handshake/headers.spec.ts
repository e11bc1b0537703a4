import { expect } from 'chai';
import { once } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tlsModule from 'node:tls';
import {
  acceptKey,
  forwardedHeaders,
  hasToken,
  isToken,
  parseTokenList,
} from '../../src/handshake/headers.js';
import { closeServer, listen, tls, trackSockets } from './helpers.js';

/**
 * Sends `headerLines` as an upgrade request to a fresh server and returns `inspect` of the request
 * it received, called while the connection is open (remoteAddress is gone once it closes).
 */
async function capture<T>(headerLines: string[], inspect: (req: IncomingMessage) => T, secure = false): Promise<T> {
  const server = secure ? https.createServer({ ...tls }) : http.createServer();
  const sockets = trackSockets(server);
  const port = await listen(server);
  try {
    const received = once(server, 'upgrade') as Promise<[IncomingMessage, Duplex, Buffer]>;
    const request = `GET /room HTTP/1.1\r\n${headerLines.map((line) => `${line}\r\n`).join('')}\r\n`;
    const socket = secure
      ? tlsModule.connect({ port, host: '127.0.0.1', ca: tls.cert, servername: 'localhost' })
      : net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(request);
    const [req, serverSocket] = await received;
    try {
      return inspect(req);
    } finally {
      socket.destroy();
      serverSocket.destroy();
    }
  } finally {
    await closeServer(server, sockets);
  }
}

const BASE = [
  'Host: proxy.example:8443',
  'Upgrade: websocket',
  'Connection: Upgrade, X-Hop-Only',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
  'Sec-WebSocket-Version: 13',
];

describe('handshake/headers', () => {
  describe('forwardedHeaders', () => {
    it('keeps end-to-end headers, drops hop-by-hop and WebSocket ones, adds X-Forwarded-*', async () => {
      const { headers, protocols } = await capture([
        ...BASE,
        'X-Hop-Only: named in Connection',
        'Keep-Alive: timeout=5',
        'Proxy-Authorization: Basic cHJveHk6cGFzcw==',
        'Proxy-Connection: keep-alive',
        'TE: trailers',
        'Trailer: X-Checksum',
        'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits',
        'Sec-WebSocket-Protocol: chat, superchat',
        'Cookie: a=1',
        'Cookie: b=2',
        'Authorization: Bearer token',
        'Origin: https://app.example',
        'User-Agent: test-agent/1.0',
        'X-Custom: custom value',
        'X-Forwarded-For: 10.0.0.1, 10.0.0.2',
        'X-Forwarded-Proto: https',
        'X-Forwarded-Host: spoofed.example',
      ], (req) => forwardedHeaders(req));
      expect(protocols).to.deep.equal(['chat', 'superchat']);
      expect(headers).to.deep.equal({
        cookie: 'a=1; b=2',
        authorization: 'Bearer token',
        origin: 'https://app.example',
        'user-agent': 'test-agent/1.0',
        'x-custom': 'custom value',
        'x-forwarded-for': '10.0.0.1, 10.0.0.2, 127.0.0.1',
        'x-forwarded-proto': 'ws',
        'x-forwarded-host': 'proxy.example:8443',
      });
    });

    it('starts X-Forwarded-For with the client address when the client sent none', async () => {
      const { headers, protocols } = await capture(BASE, (req) => forwardedHeaders(req));
      expect(protocols).to.deep.equal([]);
      expect(headers).to.deep.equal({
        'x-forwarded-for': '127.0.0.1',
        'x-forwarded-proto': 'ws',
        'x-forwarded-host': 'proxy.example:8443',
      });
    });

    it('reports wss as X-Forwarded-Proto for a TLS client', async () => {
      const { headers } = await capture(BASE, (req) => forwardedHeaders(req), true);
      expect(headers['x-forwarded-proto']).to.equal('wss');
      expect(headers['x-forwarded-for']).to.equal('127.0.0.1');
    });

    it('forwards the client X-Forwarded-* unchanged and adds none with xForwarded: false', async () => {
      const { headers } = await capture([...BASE, 'X-Forwarded-For: 10.0.0.1', 'X-Forwarded-Proto: https', 'Cookie: a=1'],
        (req) => forwardedHeaders(req, { xForwarded: false, exclude: ['COOKIE'] }));
      expect(headers).to.deep.equal({
        'x-forwarded-for': '10.0.0.1',
        'x-forwarded-proto': 'https',
      });
    });

    it('forwards at most maxHeaders client headers, in order, and names the ones dropped', async () => {
      const many = Array.from({ length: 150 }, (_, i) => `X-H${i}: ${i}`);
      const { headers, dropped } = await capture([...BASE, ...many], (req) => forwardedHeaders(req));
      const kept = Object.keys(headers).filter((name) => name.startsWith('x-h'));
      expect(kept).to.deep.equal(Array.from({ length: 100 }, (_, i) => `x-h${i}`));
      expect(dropped).to.deep.equal(Array.from({ length: 50 }, (_, i) => `x-h${i + 100}`));
      // The proxy's own X-Forwarded-* do not count.
      expect(headers['x-forwarded-for']).to.equal('127.0.0.1');
      const few = await capture([...BASE, ...many.slice(0, 5)], (req) => forwardedHeaders(req, { maxHeaders: 2 }));
      expect(few.dropped).to.deep.equal(['x-h2', 'x-h3', 'x-h4']);
    });

    it('forwards at most maxHeaderBytes bytes of client headers; a smaller one after a dropped one still fits', async () => {
      const lines = ['X-A: ' + 'a'.repeat(60), 'X-Big: ' + 'b'.repeat(200), 'X-C: c'];
      // x-a: 3 + 60 + 4 = 67 bytes, x-big: 5 + 200 + 4 = 209, x-c: 3 + 1 + 4 = 8.
      const { headers, dropped } = await capture([...BASE, ...lines], (req) => forwardedHeaders(req, { maxHeaderBytes: 75 }));
      expect(Object.keys(headers).filter((name) => !name.startsWith('x-forwarded'))).to.deep.equal(['x-a', 'x-c']);
      expect(dropped).to.deep.equal(['x-big']);
      const all = await capture([...BASE, ...lines], (req) => forwardedHeaders(req));
      expect(all.dropped).to.deep.equal([]);
    });

    it('throws a TypeError naming maxHeaders or maxHeaderBytes when invalid', async () => {
      for (const options of [{ maxHeaders: -1 }, { maxHeaders: 1.5 }, { maxHeaderBytes: Number.NaN }]) {
        const error = await capture(BASE, (req) => {
          try {
            forwardedHeaders(req, options);
            return undefined;
          } catch (err) {
            return err as Error;
          }
        });
        expect(error).to.be.instanceOf(TypeError);
        expect(error!.message).to.match(/^options\.forwarded\.(maxHeaders|maxHeaderBytes) must be an integer >= 0 or Infinity$/);
      }
    });

    it('throws a TypeError for a Sec-WebSocket-Protocol that is not a token list', async () => {
      const error = await capture([...BASE, 'Sec-WebSocket-Protocol: chat, "quoted"'], (req) => {
        try {
          forwardedHeaders(req);
          return undefined;
        } catch (err) {
          return err;
        }
      });
      expect(error).to.be.instanceOf(TypeError);
    });
  });

  describe('tokens', () => {
    it('isToken accepts RFC 7230 tchars only', () => {
      expect(isToken("chat.v2+json!#$%&'*^_`|~-")).to.equal(true);
      for (const bad of ['', 'a b', 'a,b', 'a;b', '"a"', 'a/b', 'é', 'a\tb', '(a)', 'a=b']) {
        expect(isToken(bad), JSON.stringify(bad)).to.equal(false);
      }
    });

    it('parseTokenList splits, trims, skips empty elements, and fails on a non-token', () => {
      expect(parseTokenList(undefined)).to.deep.equal([]);
      expect(parseTokenList(' chat ,, superchat ,')).to.deep.equal(['chat', 'superchat']);
      expect(parseTokenList(['a', 'b, c'])).to.deep.equal(['a', 'b', 'c']);
      expect(parseTokenList('chat, su per')).to.equal(null);
    });

    it('hasToken compares case-insensitively, element by element', () => {
      expect(hasToken('keep-alive, Upgrade', 'upgrade')).to.equal(true);
      expect(hasToken(['keep-alive', 'UPGRADE'], 'upgrade')).to.equal(true);
      expect(hasToken('upgraded', 'upgrade')).to.equal(false);
      expect(hasToken(undefined, 'upgrade')).to.equal(false);
    });

    it('acceptKey gives the value of RFC 6455 section 1.3', () => {
      expect(acceptKey('dGhlIHNhbXBsZSBub25jZQ==')).to.equal('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    });
  });
});
