import { expect } from 'chai';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { TLSSocket } from 'node:tls';
import sinon from 'sinon';
import { type PerMessageDeflateOptions, WebSocketServer } from 'ws';
import { HandshakeError } from '../../src/errors.js';
import { type Frame, closeFrame, textFrame } from '../../src/frame.js';
import { acceptKey } from '../../src/handshake/headers.js';
import { MAX_REJECTION_BODY, type UpstreamConnection, connectUpstream } from '../../src/handshake/upstream.js';
import type { DeflateParameters, PerMessageDeflateSettings } from '../../src/protocol/deflate.js';
import { FrameReadable } from '../../src/streams/frame-readable.js';
import { FrameWritable } from '../../src/streams/frame-writable.js';
import { closeServer, freePort, listen, rejectionOf, tls, trackSockets } from './helpers.js';

/** Sends `text` over an upstream connection and returns the first frame received back. */
async function echo(conn: UpstreamConnection, text: string): Promise<Frame> {
  const reader = new FrameReadable(conn.socket, { role: 'client', head: conn.head });
  const writer = new FrameWritable(conn.socket, { role: 'client', closeTimeout: 1000 });
  const received = once(reader, 'data') as Promise<[Frame]>;
  writer.write(textFrame(text));
  const [frame] = await received;
  // Close handshake: the server answers our close frame and closes TCP.
  const closed = once(conn.socket, 'close');
  reader.resume();
  writer.end(closeFrame(1000));
  await closed;
  return frame;
}

function expectHandshakeError(err: Error, code: string, closeCode: number): asserts err is HandshakeError {
  expect(err).to.be.instanceOf(HandshakeError);
  expect((err as HandshakeError).code).to.equal(code);
  expect((err as HandshakeError).closeCode).to.equal(closeCode);
}

/** A `ws` server on an http(s) server, echoing messages and choosing "superchat" when offered. */
async function wsEcho(server: http.Server | https.Server, host = '127.0.0.1') {
  const wss = new WebSocketServer({
    server,
    perMessageDeflate: false,
    handleProtocols: (offered) => (offered.has('superchat') ? 'superchat' : false),
  });
  const requests: http.IncomingMessage[] = [];
  wss.on('connection', (ws, req) => {
    requests.push(req);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const sockets = trackSockets(server);
  const port = await listen(server, host);
  return {
    port,
    requests,
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await closeServer(server, sockets);
    },
  };
}

/**
 * A raw HTTP server whose 'upgrade' handler writes `respond(key)` verbatim (key: the request's
 * Sec-WebSocket-Key). `closed` resolves when the server side of the connection closes.
 */
async function rawUpstream(respond: (key: string, req: http.IncomingMessage) => string) {
  const server = http.createServer();
  const sockets = trackSockets(server);
  let serverSocket: net.Socket | undefined;
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    serverSocket = socket;
    socket.on('error', () => {});
    // Read, so that the client's FIN is seen, and close then (http servers allow half-open sockets).
    socket.resume();
    socket.on('end', () => socket.end());
    socket.write(Buffer.from(respond(String(req.headers['sec-websocket-key']), req), 'latin1'));
  });
  const port = await listen(server);
  return {
    port,
    /** Resolves once the accepted connection is closed (by the client side). */
    async closed(): Promise<void> {
      if (serverSocket === undefined) throw new Error('no connection');
      if (!serverSocket.destroyed) await once(serverSocket, 'close');
    },
    close: () => closeServer(server, sockets),
  };
}

function switching(key: string, extra = ''): string {
  return 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
    + `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n${extra}\r\n`;
}

describe('handshake/upstream: connectUpstream', () => {
  describe('against a ws WebSocketServer', () => {
    it('resolves with the selected protocol, sends the headers and gives a working socket', async () => {
      const upstream = await wsEcho(http.createServer());
      try {
        const conn = await connectUpstream(`ws://127.0.0.1:${upstream.port}/chat/room?id=7&x=%20`, {
          protocols: ['chat', 'superchat'],
          origin: 'https://app.example',
          headers: {
            'X-Custom': 'yes',
            Cookie: ['a=1', 'b=2'],
            // Ours, not the caller's: ignored.
            Upgrade: 'h2c',
            Connection: 'keep-alive',
            'Sec-WebSocket-Key': 'AAAAAAAAAAAAAAAAAAAAAA==',
            'Sec-WebSocket-Version': '8',
            'Sec-WebSocket-Extensions': 'permessage-deflate',
            Origin: 'https://overridden.example',
          },
        });
        expect(conn.protocol).to.equal('superchat');
        expect(conn.headers['sec-websocket-protocol']).to.equal('superchat');
        expect(conn.url.href).to.equal(`ws://127.0.0.1:${upstream.port}/chat/room?id=7&x=%20`);
        expect(conn.head.length).to.equal(0);
        expect(conn.socket.listenerCount('data')).to.equal(0);
        expect(conn.socket.listenerCount('error')).to.equal(0);
        expect(conn.socket.listenerCount('timeout')).to.equal(0);
        expect(conn.socket.timeout ?? 0).to.equal(0);

        const [req] = upstream.requests;
        expect(req!.url).to.equal('/chat/room?id=7&x=%20');
        expect(req!.headers['x-custom']).to.equal('yes');
        expect(req!.headers.cookie).to.equal('a=1; b=2');
        expect(req!.headers.origin).to.equal('https://app.example');
        expect(req!.headers.host).to.equal(`127.0.0.1:${upstream.port}`);
        expect(req!.headers.upgrade).to.equal('websocket');
        expect(req!.headers.connection).to.equal('Upgrade');
        expect(req!.headers['sec-websocket-version']).to.equal('13');
        expect(req!.headers['sec-websocket-protocol']).to.equal('chat, superchat');
        expect(req!.headers['sec-websocket-extensions']).to.equal(undefined);
        const key = req!.headers['sec-websocket-key']!;
        expect(key).to.match(/^[A-Za-z0-9+/]{22}==$/);
        expect(Buffer.from(key, 'base64').length).to.equal(16);

        const frame = await echo(conn, 'hello upstream');
        expect(frame.type).to.equal('text');
        expect(frame.payload.toString()).to.equal('hello upstream');
      } finally {
        await upstream.close();
      }
    });

    it('uses a fresh key per connection and reports no protocol when none was offered', async () => {
      const upstream = await wsEcho(http.createServer());
      try {
        const a = await connectUpstream(`ws://127.0.0.1:${upstream.port}`);
        const b = await connectUpstream(new URL(`ws://127.0.0.1:${upstream.port}`));
        expect(a.protocol).to.equal(undefined);
        expect(upstream.requests[0]!.url).to.equal('/');
        expect(upstream.requests[0]!.headers['sec-websocket-protocol']).to.equal(undefined);
        expect(upstream.requests[0]!.headers.origin).to.equal(undefined);
        expect(upstream.requests[0]!.headers['sec-websocket-key'])
          .not.to.equal(upstream.requests[1]!.headers['sec-websocket-key']);
        a.socket.destroy();
        b.socket.destroy();
      } finally {
        await upstream.close();
      }
    });

    it('takes the offered protocols from a Sec-WebSocket-Protocol header when protocols is not given', async () => {
      const upstream = await wsEcho(http.createServer());
      try {
        const conn = await connectUpstream(`ws://127.0.0.1:${upstream.port}/`, {
          headers: { 'sec-websocket-protocol': 'chat, superchat' },
        });
        expect(conn.protocol).to.equal('superchat');
        expect(upstream.requests[0]!.headers['sec-websocket-protocol']).to.equal('chat, superchat');
        conn.socket.destroy();
      } finally {
        await upstream.close();
      }
    });

    it('connects to an IPv6 literal, ws://[::1]:port', async function () {
      const server = http.createServer();
      let upstream;
      try {
        upstream = await wsEcho(server, '::1');
      } catch {
        await closeServer(server);
        this.skip();
      }
      try {
        const conn = await connectUpstream(`ws://[::1]:${upstream.port}/v6?q=1`);
        expect(conn.socket.remoteAddress).to.equal('::1');
        expect(upstream.requests[0]!.url).to.equal('/v6?q=1');
        expect(upstream.requests[0]!.headers.host).to.equal(`[::1]:${upstream.port}`);
        const frame = await echo(conn, 'over v6');
        expect(frame.payload.toString()).to.equal('over v6');
      } finally {
        await upstream.close();
      }
    });
  });

  describe('wss://', () => {
    it('rejects an untrusted certificate by default (WSP_ERR_UPSTREAM_UNREACHABLE)', async () => {
      const upstream = await wsEcho(https.createServer({ ...tls }));
      try {
        const err = await rejectionOf(connectUpstream(`wss://127.0.0.1:${upstream.port}/`));
        expectHandshakeError(err, 'WSP_ERR_UPSTREAM_UNREACHABLE', 1014);
        expect((err.cause as NodeJS.ErrnoException).code).to.equal('DEPTH_ZERO_SELF_SIGNED_CERT');
        expect(err.message).to.contain('DEPTH_ZERO_SELF_SIGNED_CERT');
        expect(upstream.requests).to.have.length(0);
      } finally {
        await upstream.close();
      }
    });

    it('trusts the certificate given as ca, and the socket is a working TLSSocket', async () => {
      const upstream = await wsEcho(https.createServer({ ...tls }));
      try {
        const conn = await connectUpstream(`wss://localhost:${upstream.port}/secure`, {
          ca: tls.cert,
          protocols: 'superchat',
        });
        expect(conn.socket).to.be.instanceOf(TLSSocket);
        expect((conn.socket as TLSSocket).authorized).to.equal(true);
        expect(conn.protocol).to.equal('superchat');
        const frame = await echo(conn, 'over tls');
        expect(frame.payload.toString()).to.equal('over tls');
      } finally {
        await upstream.close();
      }
    });

    it('accepts any certificate with rejectUnauthorized: false', async () => {
      const upstream = await wsEcho(https.createServer({ ...tls }));
      try {
        const conn = await connectUpstream(`wss://127.0.0.1:${upstream.port}/`, { rejectUnauthorized: false });
        expect((conn.socket as TLSSocket).authorized).to.equal(false);
        const frame = await echo(conn, 'unverified');
        expect(frame.payload.toString()).to.equal('unverified');
      } finally {
        await upstream.close();
      }
    });

    it('checks the certificate against servername', async () => {
      const upstream = await wsEcho(https.createServer({ ...tls }));
      try {
        const err = await rejectionOf(connectUpstream(`wss://127.0.0.1:${upstream.port}/`, {
          ca: tls.cert,
          servername: 'other.example',
        }));
        expectHandshakeError(err, 'WSP_ERR_UPSTREAM_UNREACHABLE', 1014);
        expect((err.cause as NodeJS.ErrnoException).code).to.equal('ERR_TLS_CERT_ALTNAME_INVALID');
      } finally {
        await upstream.close();
      }
    });

    it('fails with WSP_ERR_UPSTREAM_UNREACHABLE for wss:// to a plain ws port', async () => {
      const upstream = await wsEcho(http.createServer());
      try {
        const err = await rejectionOf(connectUpstream(`wss://127.0.0.1:${upstream.port}/`, { rejectUnauthorized: false }));
        expectHandshakeError(err, 'WSP_ERR_UPSTREAM_UNREACHABLE', 1014);
        expect(err.cause).to.be.instanceOf(Error);
        expect(upstream.requests).to.have.length(0);
      } finally {
        await upstream.close();
      }
    });
  });

  describe('head', () => {
    it('returns the bytes sent with the 101 in the same write, and a FrameReadable reads them', async () => {
      // An unmasked text frame "first" (RFC 6455 section 5.7).
      const first = Buffer.from([0x81, 0x05, ...Buffer.from('first')]);
      const upstream = await rawUpstream((key) => switching(key) + first.toString('latin1'));
      try {
        const conn = await connectUpstream(`ws://127.0.0.1:${upstream.port}/`);
        expect(conn.head).to.deep.equal(first);
        const reader = new FrameReadable(conn.socket, { role: 'client', head: conn.head });
        const [frame] = (await once(reader, 'data')) as [Frame];
        expect(frame.type).to.equal('text');
        expect(frame.payload.toString()).to.equal('first');
        reader.destroy();
        conn.socket.destroy();
      } finally {
        await upstream.close();
      }
    });
  });

  describe('rejected handshakes', () => {
    it('reports a non-101 response with its status, headers and body (WSP_ERR_UPSTREAM_REJECTED)', async () => {
      const upstream = await rawUpstream(() => 'HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n'
        + 'X-Reason: banned\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 12\r\n\r\nnot for you\n');
      try {
        const err = await rejectionOf(connectUpstream(`ws://127.0.0.1:${upstream.port}/`));
        expectHandshakeError(err, 'WSP_ERR_UPSTREAM_REJECTED', 1014);
        expect(err.statusCode).to.equal(403);
        expect(err.headers!['x-reason']).to.equal('banned');
        expect(err.headers!['content-type']).to.equal('text/plain');
        expect(err.headers!['set-cookie']).to.deep.equal(['a=1', 'b=2']);
        expect(err.body!.toString()).to.equal('not for you\n');
        expect(err.message).to.contain('403');
        await upstream.closed();
      } finally {
        await upstream.close();
      }
    });

    it('reads a chunked body', async () => {
      const upstream = await rawUpstream(() => 'HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n'
        + '5\r\nlogin\r\n6\r\n first\r\n0\r\n\r\n');
      try {
        const err = await rejectionOf(connectUpstream(`ws://127.0.0.1:${upstream.port}/`));
        expectHandshakeError(err, 'WSP_ERR_UPSTREAM_REJECTED', 1014);
        expect(err.statusCode).to.equal(401);
        expect(err.body!.toString()).to.equal('login first');
      } finally {
        await upstream.close();
      }
    });

    it('keeps at most 64 KiB of the body and stops reading there', async () => {
      const big = Buffer.alloc(200 * 1024, 'x');
      big.write('start', 0);
      const server = http.createServer((_req, res) => {
        res.writeHead(503, { 'Content-Type': 'text/plain' });
        res.on('error', () => {});
        res.end(big);
      });
      const sockets = trackSockets(server);
      const port = await listen(server);
      try {
        const err = await rejectionOf(connectUpstream(`ws://127.0.0.1:${port}/`));
        expectHandshakeError(err, 'WSP_ERR_UPSTREAM_REJECTED', 1014);
        expect(err.statusCode).to.equal(503);
        expect(MAX_REJECTION_BODY).to.equal(65536);
        expect(err.body!.length).to.equal(65536);
        expect(err.body!.equals(big.subarray(0, 65536))).to.equal(true);
        expect(err.message).to.contain('cut at 64 KiB');
      } finally {
        await closeServer(server, sockets);
      }
    });

    const invalid101: Array<[string, (key: string) => string, string, string[]?]> = [
      ['a wrong Sec-WebSocket-Accept',
        () => switching('AAAAAAAAAAAAAAAAAAAAAA=='), 'does not match the key'],
      ['no Sec-WebSocket-Accept',
        () => 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
        'no Sec-WebSocket-Accept header'],
      ['no Upgrade header',
        (key) => `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
        'no Upgrade header'],
      ['Upgrade: h2c',
        (key) => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
        'Upgrade is "h2c"'],
      ['no Connection header',
        (key) => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
        'no Connection header'],
      ['a protocol that was not offered',
        (key) => switching(key, 'Sec-WebSocket-Protocol: superchat\r\n'), 'subprotocol "superchat" was not offered', ['chat']],
      ['a protocol when none was offered',
        (key) => switching(key, 'Sec-WebSocket-Protocol: chat\r\n'), 'selected but none was offered'],
      ['a list of protocols instead of one',
        (key) => switching(key, 'Sec-WebSocket-Protocol: chat, superchat\r\n'), 'was not offered', ['chat', 'superchat']],
      ['an extension that was not offered',
        (key) => switching(key, 'Sec-WebSocket-Extensions: permessage-deflate\r\n'), 'extension "permessage-deflate" not offered'],
    ];
    for (const [what, respond, detail, protocols] of invalid101) {
      it(`fails a 101 with ${what} (WSP_ERR_UPSTREAM_HANDSHAKE) and destroys the socket`, async () => {
        const upstream = await rawUpstream(respond);
        try {
          const err = await rejectionOf(connectUpstream(`ws://127.0.0.1:${upstream.port}/`, protocols ? { protocols } : {}));
          expectHandshakeError(err, 'WSP_ERR_UPSTREAM_HANDSHAKE', 1014);
          expect(err.message).to.contain(detail);
          expect(err.statusCode).to.equal(undefined);
          await upstream.closed();
        } finally {
          await upstream.close();
        }
      });
    }
  });

  describe('connection failures', () => {
    it('fails with WSP_ERR_UPSTREAM_UNREACHABLE when the connection is refused', async () => {
      const port = await freePort();
      const err = await rejectionOf(connectUpstream(`ws://127.0.0.1:${port}/`));
      expectHandshakeError(err, 'WSP_ERR_UPSTREAM_UNREACHABLE', 1014);
      expect((err.cause as NodeJS.ErrnoException).code).to.equal('ECONNREFUSED');
      expect(err.message).to.contain('ECONNREFUSED');
    });

    it('fails with WSP_ERR_UPSTREAM_UNREACHABLE when the upstream closes without answering', async () => {
      const server = net.createServer((socket) => socket.destroy());
      const port = await listen(server);
      try {
        const err = await rejectionOf(connectUpstream(`ws://127.0.0.1:${port}/`));
        expectHandshakeError(err, 'WSP_ERR_UPSTREAM_UNREACHABLE', 1014);
        expect((err.cause as NodeJS.ErrnoException).code).to.equal('ECONNRESET');
      } finally {
        await closeServer(server);
      }
    });

    describe('timeout', () => {
      let clock: sinon.SinonFakeTimers | undefined;
      afterEach(() => {
        clock?.restore();
        clock = undefined;
      });

      it('fails with WSP_ERR_UPSTREAM_TIMEOUT, destroys the request and leaves no timer', async () => {
        clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
        const server = net.createServer();
        const sockets = trackSockets(server);
        const port = await listen(server);
        try {
          const accepted = once(server, 'connection') as Promise<[net.Socket]>;
          const pending = rejectionOf(connectUpstream(`ws://127.0.0.1:${port}/`, { timeout: 3000 }));
          const [socket] = await accepted;
          await once(socket, 'data'); // the request arrived; the server never answers
          expect(clock.countTimers()).to.equal(1);
          const closed = once(socket, 'close');
          clock.tick(2999);
          clock.tick(1);
          const err = await pending;
          expectHandshakeError(err, 'WSP_ERR_UPSTREAM_TIMEOUT', 1014);
          expect(clock.countTimers()).to.equal(0);
          await closed; // the client end was destroyed
        } finally {
          await closeServer(server, sockets);
        }
      });

      it('leaves no timer after a successful handshake', async () => {
        clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
        const upstream = await rawUpstream((key) => switching(key));
        try {
          const conn = await connectUpstream(`ws://127.0.0.1:${upstream.port}/`, { timeout: 5000 });
          expect(clock.countTimers()).to.equal(0);
          conn.socket.destroy();
        } finally {
          await upstream.close();
        }
      });

      it('rejects an invalid timeout with a TypeError', async () => {
        const err = await rejectionOf(connectUpstream('ws://127.0.0.1:1/', { timeout: -1 }));
        expect(err).to.be.instanceOf(TypeError);
      });
    });

    it('rejects with the abort reason when the signal aborts', async () => {
      const server = net.createServer();
      const sockets = trackSockets(server);
      const port = await listen(server);
      try {
        const controller = new AbortController();
        const accepted = once(server, 'connection') as Promise<[net.Socket]>;
        const pending = rejectionOf(connectUpstream(`ws://127.0.0.1:${port}/`, { signal: controller.signal }));
        const [socket] = await accepted;
        const closed = once(socket, 'close');
        const reason = new Error('client went away');
        controller.abort(reason);
        expect(await pending).to.equal(reason);
        await closed;
      } finally {
        await closeServer(server, sockets);
      }
    });
  });

  describe('invalid arguments', () => {
    const badUrls = ['http://127.0.0.1/', 'https://127.0.0.1/', 'ftp://x/', 'not a url', '', '//127.0.0.1/', 'ws://127.0.0.1/#frag'];
    for (const url of badUrls) {
      it(`rejects ${JSON.stringify(url)} with WSP_ERR_INVALID_URL, without throwing synchronously`, async () => {
        let promise: Promise<unknown> | undefined;
        expect(() => {
          promise = connectUpstream(url);
        }).not.to.throw();
        const err = await rejectionOf(promise!);
        expectHandshakeError(err, 'WSP_ERR_INVALID_URL', 1011);
      });
    }

    const badProtocols: Array<string | string[]> = ['', 'two words', 'a,b', ['chat', 'chat'], ['ok', 'sémantique'], ['x', '']];
    for (const protocols of badProtocols) {
      it(`rejects protocols ${JSON.stringify(protocols)} with a TypeError`, async () => {
        const err = await rejectionOf(connectUpstream('ws://127.0.0.1:1/', { protocols }));
        expect(err).to.be.instanceOf(TypeError);
      });
    }

    it('rejects an invalid header value with a TypeError', async () => {
      const err = await rejectionOf(connectUpstream('ws://127.0.0.1:1/', { headers: { 'X-Bad': 'a\r\nInjected: yes' } }));
      expect(err).to.be.instanceOf(TypeError);
    });
  });
});

describe('handshake/upstream: connectUpstream with perMessageDeflate', () => {
  /** A ws server with the given perMessageDeflate option, recording the requests it accepts. */
  async function wsDeflateServer(perMessageDeflate: boolean | PerMessageDeflateOptions) {
    const server = http.createServer();
    const wss = new WebSocketServer({ server, perMessageDeflate });
    const requests: http.IncomingMessage[] = [];
    const extensions: string[] = [];
    wss.on('connection', (ws, req) => {
      requests.push(req);
      extensions.push(ws.extensions);
    });
    const sockets = trackSockets(server);
    const port = await listen(server);
    return {
      port,
      requests,
      extensions,
      async close() {
        for (const client of wss.clients) client.terminate();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        await closeServer(server, sockets);
      },
    };
  }

  /** The plain offer that follows a constrained one. */
  const PLAIN = ', permessage-deflate; client_max_window_bits';
  const cases: Array<[string, boolean | PerMessageDeflateSettings, boolean | PerMessageDeflateOptions, string | undefined, DeflateParameters | undefined]> = [
    ['the defaults, against a ws server with its defaults', true, {}, 'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12'+PLAIN,
      { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 12, clientMaxWindowBits: 12 }],
    ['the defaults, against a ws server that requires no context takeover and a 10-bit window',
      true, { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10 },
      'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12'+PLAIN,
      { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 12 }],
    ['full windows and no context takeover asked', { serverMaxWindowBits: 15, clientMaxWindowBits: 15, serverNoContextTakeover: true },
      {}, 'permessage-deflate; server_no_context_takeover; client_max_window_bits'+PLAIN,
      { serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }],
    ['the defaults, against a ws server without compression', true, false,
      'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12'+PLAIN, undefined],
    // ws as a server refuses (400) our constrained offer when its own window setting is larger: it
    // takes the plain offer that follows.
    ['the defaults, against a ws server with fixed 15-bit windows', true, { serverMaxWindowBits: 15, clientMaxWindowBits: 15 },
      'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12'+PLAIN,
      { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }],
    ['false, against a ws server with compression', false, {}, undefined, undefined],
  ];
  for (const [what, option, serverOption, offered, negotiated] of cases) {
    it(`negotiates with ${what}`, async () => {
      const upstream = await wsDeflateServer(serverOption);
      try {
        const conn = await connectUpstream(`ws://127.0.0.1:${upstream.port}/`, { perMessageDeflate: option });
        expect(upstream.requests[0]!.headers['sec-websocket-extensions']).to.equal(offered);
        expect(conn.perMessageDeflate).to.deep.equal(negotiated);
        expect(upstream.extensions[0]).to.equal(negotiated === undefined ? '' : 'permessage-deflate');
        conn.socket.destroy();
      } finally {
        await upstream.close();
      }
    });
  }

  it('accepts a bare permessage-deflate answer: every window 15, context kept', async () => {
    const upstream = await rawUpstream((key) => switching(key, 'Sec-WebSocket-Extensions: permessage-deflate\r\n'));
    try {
      const conn = await connectUpstream(`ws://127.0.0.1:${upstream.port}/`, { perMessageDeflate: true });
      expect(conn.perMessageDeflate).to.deep.equal({
        serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15,
      });
      conn.socket.destroy();
    } finally {
      await upstream.close();
    }
  });

  const invalid: Array<[string, string]> = [
    ['permessage-deflate;;', 'invalid Sec-WebSocket-Extensions'],
    ['x-webkit-deflate-frame', 'extension "x-webkit-deflate-frame" not offered'],
    ['permessage-deflate, permessage-deflate', 'permessage-deflate answered 2 times'],
    ['permessage-deflate; mystery', 'Unknown parameter "mystery"'],
  ];
  for (const [header, detail] of invalid) {
    it(`fails an answer of ${JSON.stringify(header)} with WSP_ERR_UPSTREAM_HANDSHAKE`, async () => {
      const upstream = await rawUpstream((key) => switching(key, `Sec-WebSocket-Extensions: ${header}\r\n`));
      try {
        const err = await rejectionOf(connectUpstream(`ws://127.0.0.1:${upstream.port}/`, { perMessageDeflate: true }));
        expectHandshakeError(err, 'WSP_ERR_UPSTREAM_HANDSHAKE', 1014);
        expect(err.message).to.contain(detail);
        await upstream.closed();
      } finally {
        await upstream.close();
      }
    });
  }

  it('rejects invalid settings with a TypeError naming the option', async () => {
    const err = await rejectionOf(connectUpstream('ws://127.0.0.1:1/', { perMessageDeflate: { memLevel: 10 } }));
    expect(err).to.be.instanceOf(TypeError);
    expect(err.message).to.equal('options.perMessageDeflate.memLevel must be an integer from 1 to 9');
  });
});
