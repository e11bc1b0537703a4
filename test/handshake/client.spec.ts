import { expect } from 'chai';
import { once } from 'node:events';
import http, { IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { type PerMessageDeflateOptions, WebSocket } from 'ws';
import { HandshakeError } from '../../src/errors.js';
import { type Frame, textFrame } from '../../src/frame.js';
import {
  type AcceptClientOptions,
  type AcceptedClient,
  acceptClient,
  validateClientRequest,
  writeHttpResponse,
} from '../../src/handshake/client.js';
import { acceptKey } from '../../src/handshake/headers.js';
import type { DeflateParameters } from '../../src/protocol/deflate.js';
import { FrameReadable } from '../../src/streams/frame-readable.js';
import { FrameWritable } from '../../src/streams/frame-writable.js';
import {
  closeServer,
  headerValues,
  listen,
  parseResponse,
  rawExchange,
  rejectionOf,
  trackSockets,
} from './helpers.js';

type Outcome = { accepted: AcceptedClient } | { error: Error };

/**
 * An HTTP server that hands every request, upgrade or not, to acceptClient with the current
 * options, and reports each outcome.
 */
async function acceptingServer() {
  const server = http.createServer();
  const sockets = trackSockets(server);
  const outcomes: Outcome[] = [];
  const waiting: Array<(outcome: Outcome) => void> = [];
  const state: { options: AcceptClientOptions; destroyFirst: boolean } = { options: {}, destroyFirst: false };
  const handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (state.destroyFirst) socket.destroy();
    acceptClient(req, socket, head, state.options).then(
      (accepted) => report({ accepted }),
      (error: Error) => report({ error }),
    );
  };
  const report = (outcome: Outcome): void => {
    const resolve = waiting.shift();
    if (resolve !== undefined) resolve(outcome);
    else outcomes.push(outcome);
  };
  server.on('upgrade', handle);
  server.on('request', (req: IncomingMessage) => handle(req, req.socket, Buffer.alloc(0)));
  const port = await listen(server);
  return {
    port,
    state,
    next(): Promise<Outcome> {
      const outcome = outcomes.shift();
      if (outcome !== undefined) return Promise.resolve(outcome);
      return new Promise((resolve) => waiting.push(resolve));
    },
    close: () => closeServer(server, sockets),
  };
}

/** Resolves with the 101 response once the client is open (both events are listened to at once). */
async function opened(client: WebSocket): Promise<[IncomingMessage]> {
  const [upgrade] = await Promise.all([once(client, 'upgrade'), once(client, 'open')]);
  return upgrade as [IncomingMessage];
}

async function accepted(outcome: Promise<Outcome>): Promise<AcceptedClient> {
  const result = await outcome;
  if ('error' in result) throw result.error;
  return result.accepted;
}

async function rejected(outcome: Promise<Outcome>): Promise<HandshakeError> {
  const result = await outcome;
  if (!('error' in result)) throw new Error('expected acceptClient to reject');
  expect(result.error).to.be.instanceOf(HandshakeError);
  return result.error as HandshakeError;
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function upgradeRequest(overrides: Record<string, string | undefined> = {}, requestLine = 'GET /chat HTTP/1.1'): string {
  const headers: Record<string, string | undefined> = {
    Host: 'server.example.com',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': KEY,
    'Sec-WebSocket-Version': '13',
    ...overrides,
  };
  let text = `${requestLine}\r\n`;
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) text += `${name}: ${value}\r\n`;
  return `${text}\r\n`;
}

/** An IncomingMessage with the given request line fields and headers, for validateClientRequest. */
function fakeRequest(headers: Record<string, string>, method = 'GET', version = '1.1'): IncomingMessage {
  const req = new IncomingMessage(new net.Socket());
  req.method = method;
  req.httpVersion = version;
  req.httpVersionMajor = Number(version.split('.')[0]);
  req.httpVersionMinor = Number(version.split('.')[1]);
  req.headers = headers;
  return req;
}

describe('handshake/client', () => {
  describe('validateClientRequest', () => {
    const valid = {
      host: 'server.example.com',
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': KEY,
      'sec-websocket-version': '13',
    };

    it('accepts the RFC 6455 section 1.2 example and returns the key and offered protocols', () => {
      expect(validateClientRequest(fakeRequest({ ...valid, 'sec-websocket-protocol': 'chat, superchat' })))
        .to.deep.equal({ ok: true, key: KEY, protocols: ['chat', 'superchat'] });
    });

    it('accepts case-insensitive Upgrade/Connection tokens within lists, and HTTP/2.0-style versions', () => {
      const req = fakeRequest({ ...valid, upgrade: 'WebSocket', connection: 'keep-alive, UPGRADE' }, 'GET', '1.2');
      expect(validateClientRequest(req)).to.deep.equal({ ok: true, key: KEY, protocols: [] });
    });

    const cases: Array<[string, IncomingMessage, 400 | 426, string]> = [
      ['POST', fakeRequest(valid, 'POST'), 400, 'method POST is not GET'],
      ['HTTP/1.0', fakeRequest(valid, 'GET', '1.0'), 400, 'HTTP/1.0 is older than HTTP/1.1'],
      ['no Host', fakeRequest({ ...valid, host: '' }), 400, 'missing Host header'],
      ['no Upgrade', fakeRequest({ ...valid, upgrade: undefined } as unknown as Record<string, string>), 400, 'missing Upgrade header'],
      ['Upgrade: h2c', fakeRequest({ ...valid, upgrade: 'h2c' }), 400, 'Upgrade header does not contain "websocket"'],
      ['Connection: keep-alive', fakeRequest({ ...valid, connection: 'keep-alive' }), 400, 'Connection header does not contain "upgrade"'],
      ['no version', fakeRequest({ ...valid, 'sec-websocket-version': undefined } as unknown as Record<string, string>), 400,
        'missing Sec-WebSocket-Version header'],
      ['version 8', fakeRequest({ ...valid, 'sec-websocket-version': '8' }), 426, 'unsupported Sec-WebSocket-Version "8"'],
      ['a 15-byte key', fakeRequest({ ...valid, 'sec-websocket-key': Buffer.alloc(15).toString('base64') }), 400,
        'Sec-WebSocket-Key is not the base64 encoding of 16 bytes'],
      ['a 17-byte key', fakeRequest({ ...valid, 'sec-websocket-key': Buffer.alloc(17).toString('base64') }), 400,
        'Sec-WebSocket-Key is not the base64 encoding of 16 bytes'],
      ['a non-canonical key', fakeRequest({ ...valid, 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZR==' }), 400,
        'Sec-WebSocket-Key is not the base64 encoding of 16 bytes'],
      ['a protocol that is not a token', fakeRequest({ ...valid, 'sec-websocket-protocol': 'chat, "super"' }), 400,
        'Sec-WebSocket-Protocol is not a list of tokens'],
      ['a duplicate protocol', fakeRequest({ ...valid, 'sec-websocket-protocol': 'chat, chat' }), 400,
        'Sec-WebSocket-Protocol lists a subprotocol twice'],
    ];
    for (const [what, req, statusCode, reason] of cases) {
      it(`rejects ${what} with ${statusCode}`, () => {
        const check = validateClientRequest(req);
        expect(check).to.deep.include({ ok: false, statusCode, reason });
        if (statusCode === 426) expect(check).to.have.deep.property('headers', { 'Sec-WebSocket-Version': '13' });
        else expect(check).not.to.have.property('headers');
      });
    }
  });

  describe('acceptClient with ws clients', () => {
    let server: Awaited<ReturnType<typeof acceptingServer>>;
    const clients: WebSocket[] = [];
    beforeEach(async () => {
      server = await acceptingServer();
    });
    afterEach(async () => {
      for (const client of clients.splice(0)) client.terminate();
      await server.close();
    });

    function connect(protocols?: string[], options?: ConstructorParameters<typeof WebSocket>[2]): WebSocket {
      const client = new WebSocket(`ws://127.0.0.1:${server.port}/chat`, protocols, options);
      clients.push(client);
      return client;
    }

    it('answers 101 with the selected protocol, and the socket carries frames both ways', async () => {
      server.state.options = { protocol: 'superchat', headers: { 'Set-Cookie': ['a=1', 'b=2'], 'X-Proxy': 'wsp' } };
      const client = connect(['chat', 'superchat']);
      const [res] = await opened(client);
      const { socket, head, protocol } = await accepted(server.next());
      expect(res.statusCode).to.equal(101);
      expect(res.headers['sec-websocket-protocol']).to.equal('superchat');
      expect(res.headers['set-cookie']).to.deep.equal(['a=1', 'b=2']);
      expect(res.headers['x-proxy']).to.equal('wsp');
      expect(client.protocol).to.equal('superchat');
      expect(protocol).to.equal('superchat');
      expect(head.length).to.equal(0);

      const reader = new FrameReadable(socket, { role: 'server' });
      const writer = new FrameWritable(socket, { role: 'server' });
      const frameIn = once(reader, 'data') as Promise<[Frame]>;
      client.send('from client');
      const [frame] = await frameIn;
      expect(frame.payload.toString()).to.equal('from client');
      const messageIn = once(client, 'message') as Promise<[Buffer, boolean]>;
      writer.write(textFrame('from server'));
      const [data, isBinary] = await messageIn;
      expect(isBinary).to.equal(false);
      expect(data.toString()).to.equal('from server');
      reader.destroy();
      writer.destroy();
    });

    // RFC 6455 lets a server select no subprotocol; the ws client then fails the connection itself
    // ("Server sent no subprotocol"), which is its policy, not a defect of the 101.
    async function noProtocolAnswer(client: WebSocket): Promise<IncomingMessage> {
      const [[res], [error]] = await Promise.all([once(client, 'upgrade'), once(client, 'error')]);
      expect((error as Error).message).to.equal('Server sent no subprotocol');
      return res as IncomingMessage;
    }

    it('answers no protocol when the selected one was not offered by the client', async () => {
      server.state.options = { protocol: 'other' };
      const client = connect(['chat', 'superchat']);
      const res = await noProtocolAnswer(client);
      expect(res.statusCode).to.equal(101);
      expect(res.headers['sec-websocket-protocol']).to.equal(undefined);
      expect((await accepted(server.next())).protocol).to.equal(undefined);
    });

    it('answers no protocol when none is given, never echoing the client list', async () => {
      const client = connect(['chat', 'superchat']);
      const res = await noProtocolAnswer(client);
      expect(res.statusCode).to.equal(101);
      expect(res.headers['sec-websocket-protocol']).to.equal(undefined);
      expect((await accepted(server.next())).protocol).to.equal(undefined);
    });

    it('opens a client that offered no protocol, with none answered even if one is given', async () => {
      server.state.options = { protocol: 'chat' };
      const client = connect();
      const [res] = await opened(client);
      expect(res.headers['sec-websocket-protocol']).to.equal(undefined);
      expect(client.protocol).to.equal('');
      expect((await accepted(server.next())).protocol).to.equal(undefined);
    });

    it('negotiates no extension even when the client offers permessage-deflate', async () => {
      const client = connect(undefined, { perMessageDeflate: true });
      const [res] = await opened(client);
      expect(res.headers['sec-websocket-extensions']).to.equal(undefined);
      expect(client.extensions).to.equal('');
      await accepted(server.next());
    });

    it('ignores reserved names in options.headers', async () => {
      server.state.options = {
        protocol: 'chat',
        headers: { 'Sec-WebSocket-Protocol': 'superchat', 'Sec-WebSocket-Extensions': 'permessage-deflate', Connection: 'close' },
      };
      const client = connect(['chat', 'superchat']);
      const [res] = await opened(client);
      expect(res.headers['sec-websocket-protocol']).to.equal('chat');
      expect(res.headers['sec-websocket-extensions']).to.equal(undefined);
      expect(res.headers.connection).to.equal('Upgrade');
      await accepted(server.next());
    });

    it('writes the exact 101 of RFC 6455 section 1.3 for its example key', async () => {
      const socket = net.connect(server.port, '127.0.0.1');
      socket.write(upgradeRequest({ 'Sec-WebSocket-Protocol': 'chat, superchat' }));
      const [chunk] = (await once(socket, 'data')) as [Buffer];
      expect(chunk.toString('latin1')).to.equal('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'
        + 'Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
      expect(acceptKey(KEY)).to.equal('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
      const { socket: serverSocket } = await accepted(server.next());
      socket.destroy();
      serverSocket.destroy();
    });

    it('passes the bytes sent with the request through as head', async () => {
      const socket = net.connect(server.port, '127.0.0.1');
      // A masked text frame "Hi" right behind the request, in the same write.
      const frame = Buffer.from([0x81, 0x82, 1, 2, 3, 4, 'H'.charCodeAt(0) ^ 1, 'i'.charCodeAt(0) ^ 2]);
      socket.write(Buffer.concat([Buffer.from(upgradeRequest()), frame]));
      const { socket: serverSocket, head } = await accepted(server.next());
      expect(head).to.deep.equal(frame);
      socket.destroy();
      serverSocket.destroy();
    });
  });

  describe('acceptClient with bad requests', () => {
    let server: Awaited<ReturnType<typeof acceptingServer>>;
    beforeEach(async () => {
      server = await acceptingServer();
    });
    afterEach(async () => {
      await server.close();
    });

    const bad: Array<[string, string, 400 | 426, string]> = [
      ['POST', upgradeRequest({}, 'POST /chat HTTP/1.1'), 400, 'method POST is not GET'],
      ['HTTP/1.0', upgradeRequest({}, 'GET /chat HTTP/1.0'), 400, 'HTTP/1.0 is older than HTTP/1.1'],
      ['no Upgrade header', upgradeRequest({ Upgrade: undefined }), 400, 'missing Upgrade header'],
      ['Connection without upgrade', upgradeRequest({ Connection: 'keep-alive' }), 400, 'Connection header does not contain "upgrade"'],
      ['a key of the wrong length', upgradeRequest({ 'Sec-WebSocket-Key': 'AAAAAAAAAAAAAAAAAAAA' }), 400,
        'Sec-WebSocket-Key is not the base64 encoding of 16 bytes'],
      ['a key that is not base64', upgradeRequest({ 'Sec-WebSocket-Key': 'not*base64*at*all*!!!!==' }), 400,
        'Sec-WebSocket-Key is not the base64 encoding of 16 bytes'],
      ['no key', upgradeRequest({ 'Sec-WebSocket-Key': undefined }), 400, 'missing Sec-WebSocket-Key header'],
      ['version 8', upgradeRequest({ 'Sec-WebSocket-Version': '8' }), 426, 'unsupported Sec-WebSocket-Version "8"'],
      ['no version', upgradeRequest({ 'Sec-WebSocket-Version': undefined }), 400, 'missing Sec-WebSocket-Version header'],
      ['an invalid protocol list', upgradeRequest({ 'Sec-WebSocket-Protocol': 'chat, a b' }), 400,
        'Sec-WebSocket-Protocol is not a list of tokens'],
    ];
    for (const [what, request, statusCode, reason] of bad) {
      it(`answers ${what} with ${statusCode}, closes the socket and rejects with WSP_ERR_CLIENT_HANDSHAKE`, async () => {
        const exchange = await rawExchange(server.port, request);
        const err = await rejected(server.next());
        expect(err.code).to.equal('WSP_ERR_CLIENT_HANDSHAKE');
        expect(err.closeCode).to.equal(1002);
        expect(err.statusCode).to.equal(statusCode);
        expect(err.message).to.equal(`invalid client handshake request: ${reason}`);

        expect(exchange.ended).to.equal(true);
        const response = parseResponse(exchange.text);
        expect(response.statusLine).to.equal(statusCode === 426 ? 'HTTP/1.1 426 Upgrade Required' : 'HTTP/1.1 400 Bad Request');
        expect(headerValues(response.headers, 'connection')).to.deep.equal(['close']);
        expect(headerValues(response.headers, 'content-type')).to.deep.equal(['text/plain; charset=utf-8']);
        expect(headerValues(response.headers, 'content-length')).to.deep.equal([String(reason.length + 1)]);
        expect(headerValues(response.headers, 'sec-websocket-version')).to.deep.equal(statusCode === 426 ? ['13'] : []);
        expect(headerValues(response.headers, 'upgrade')).to.deep.equal([]);
        expect(headerValues(response.headers, 'sec-websocket-accept')).to.deep.equal([]);
        expect(response.body).to.equal(`${reason}\n`);
      });
    }

    it('rejects without writing when the socket is already destroyed', async () => {
      server.state.destroyFirst = true;
      const exchange = await rawExchange(server.port, upgradeRequest());
      const err = await rejected(server.next());
      expect(err.code).to.equal('WSP_ERR_CLIENT_HANDSHAKE');
      expect(err.closeCode).to.equal(1002);
      expect(err.statusCode).to.equal(undefined);
      expect(err.message).to.equal('invalid client handshake request: the client socket is closed');
      expect(exchange.text).to.equal('');
    });

    it('rejects invalid extra headers with a TypeError before writing anything', async () => {
      const req = fakeRequest({ host: 'h', upgrade: 'websocket', connection: 'upgrade', 'sec-websocket-key': KEY, 'sec-websocket-version': '13' });
      const socket = new net.Socket();
      const written: unknown[] = [];
      socket.write = ((chunk: unknown) => written.push(chunk)) as unknown as typeof socket.write;
      Object.defineProperty(socket, 'writable', { value: true });
      const err = await rejectionOf(acceptClient(req, socket, Buffer.alloc(0), { headers: { 'X-Bad': 'a\r\nb: c' } }));
      expect(err).to.be.instanceOf(TypeError);
      expect(written).to.deep.equal([]);
      socket.destroy();
    });
  });

  describe('writeHttpResponse', () => {
    /** Runs writeHttpResponse on the server end of a connection; returns what the client received. */
    async function respond(write: (socket: net.Socket) => void) {
      const server = net.createServer(write);
      const sockets = trackSockets(server);
      const port = await listen(server);
      try {
        return await rawExchange(port, '');
      } finally {
        await closeServer(server, sockets);
      }
    }

    it('writes a 502 with a Content-Length for its body and ends the socket', async () => {
      const exchange = await respond((socket) => writeHttpResponse(socket, 502, { 'Content-Type': 'text/plain' }, 'bad gateway'));
      expect(exchange.ended).to.equal(true);
      const response = parseResponse(exchange.text);
      expect(response.statusLine).to.equal('HTTP/1.1 502 Bad Gateway');
      expect(response.headers.map(([name]) => name)).to.deep.equal(['content-type', 'date', 'connection', 'content-length']);
      expect(headerValues(response.headers, 'content-length')).to.deep.equal(['11']);
      expect(headerValues(response.headers, 'connection')).to.deep.equal(['close']);
      expect(response.body).to.equal('bad gateway');
    });

    it('relays an upstream response minus hop-by-hop headers, with the framing recomputed', async () => {
      const upstreamHeaders = {
        'content-type': 'text/html',
        date: 'Tue, 01 Jan 2030 00:00:00 GMT',
        connection: 'keep-alive, X-Hop',
        'x-hop': 'secret',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        'content-length': '999',
        upgrade: 'websocket',
        'proxy-authenticate': 'Basic',
        trailer: 'X-Checksum',
        'sec-websocket-accept': 'abc',
        'sec-websocket-version': '13',
        'set-cookie': ['a=1', 'b=2'],
        'www-authenticate': 'Bearer',
        'x-absent': undefined,
      };
      const body = Buffer.from('<p>é</p>');
      const exchange = await respond((socket) => writeHttpResponse(socket, 401, upstreamHeaders, body));
      const response = parseResponse(exchange.text);
      expect(response.statusLine).to.equal('HTTP/1.1 401 Unauthorized');
      expect(response.headers).to.deep.equal([
        ['content-type', 'text/html'],
        ['date', 'Tue, 01 Jan 2030 00:00:00 GMT'],
        ['sec-websocket-version', '13'],
        ['set-cookie', 'a=1'],
        ['set-cookie', 'b=2'],
        ['www-authenticate', 'Bearer'],
        ['connection', 'close'],
        ['content-length', String(body.length)],
      ]);
      expect(Buffer.from(response.body, 'latin1').equals(body)).to.equal(true);
    });

    it('sends no Content-Length and no body for a 204 or 304', async () => {
      const exchange = await respond((socket) => writeHttpResponse(socket, 304, { etag: '"x"' }, 'ignored'));
      const response = parseResponse(exchange.text);
      expect(response.statusLine).to.equal('HTTP/1.1 304 Not Modified');
      expect(headerValues(response.headers, 'content-length')).to.deep.equal([]);
      expect(headerValues(response.headers, 'etag')).to.deep.equal(['"x"']);
      expect(response.body).to.equal('');
    });

    it('throws a TypeError for 101, out-of-range statuses and invalid headers, writing nothing', () => {
      const socket = new net.Socket();
      expect(() => writeHttpResponse(socket, 101, {})).to.throw(TypeError);
      expect(() => writeHttpResponse(socket, 99, {})).to.throw(TypeError);
      expect(() => writeHttpResponse(socket, 600, {})).to.throw(TypeError);
      expect(() => writeHttpResponse(socket, 502.5, {})).to.throw(TypeError);
      expect(() => writeHttpResponse(socket, 502, { 'bad name': 'x' })).to.throw(TypeError);
      expect(() => writeHttpResponse(socket, 502, { 'x-injected': 'a\r\nb: c' })).to.throw(TypeError);
      expect(socket.bytesWritten).to.equal(0);
      socket.destroy();
    });
  });
});

describe('handshake/client: acceptClient with perMessageDeflate', () => {
  let server: Awaited<ReturnType<typeof acceptingServer>>;
  const clients: WebSocket[] = [];
  beforeEach(async () => {
    server = await acceptingServer();
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.terminate();
    await server.close();
  });

  function connect(perMessageDeflate: boolean | PerMessageDeflateOptions): WebSocket {
    const client = new WebSocket(`ws://127.0.0.1:${server.port}/chat`, { perMessageDeflate });
    clients.push(client);
    return client;
  }

  const all = (overrides: Partial<DeflateParameters>): DeflateParameters => ({
    serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, ...overrides,
  });

  const cases: Array<[string, AcceptClientOptions, boolean | PerMessageDeflateOptions, string | undefined, DeflateParameters | undefined]> = [
    ['the defaults, to a ws client with its defaults', { perMessageDeflate: true }, true,
      'permessage-deflate; client_max_window_bits=12; server_max_window_bits=12', all({ serverMaxWindowBits: 12, clientMaxWindowBits: 12 })],
    ['the defaults, to a ws client asking for no context takeover and a 10-bit server window',
      { perMessageDeflate: true }, { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10 },
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12',
      all({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 12 })],
    ['full windows', { perMessageDeflate: { serverMaxWindowBits: 15, clientMaxWindowBits: 15 } }, true, 'permessage-deflate', all({})],
    ['the upstream\'s parameters to match', {
      perMessageDeflate: true,
      perMessageDeflateMatch: all({ serverNoContextTakeover: true, clientMaxWindowBits: 11 }),
    }, true, 'permessage-deflate; client_max_window_bits=11; server_no_context_takeover',
    all({ serverNoContextTakeover: true, clientMaxWindowBits: 11 })],
    ['the defaults, to a ws client without compression', { perMessageDeflate: true }, false, undefined, undefined],
  ];
  for (const [what, options, clientOption, answered, negotiated] of cases) {
    it(`answers ${what}`, async () => {
      server.state.options = options;
      const client = connect(clientOption);
      const [res] = await opened(client);
      expect(res.headers['sec-websocket-extensions']).to.equal(answered);
      expect(client.extensions).to.equal(answered === undefined ? '' : 'permessage-deflate');
      expect((await accepted(server.next())).perMessageDeflate).to.deep.equal(negotiated);
    });
  }

  const garbled: Array<[string, string]> = [
    ['permessage-deflate; server_max_window_bits=16', 'Invalid value for parameter "server_max_window_bits": 16'],
    ['permessage-deflate;;', 'Unexpected character at index 19'],
    ['permessage-deflate; mystery', 'Unknown parameter "mystery"'],
  ];
  for (const [header, detail] of garbled) {
    it(`answers ${JSON.stringify(header)} with 400 and WSP_ERR_CLIENT_HANDSHAKE, as ws does`, async () => {
      server.state.options = { perMessageDeflate: true };
      const exchange = await rawExchange(server.port, upgradeRequest({ 'Sec-WebSocket-Extensions': header }));
      const err = await rejected(server.next());
      expect(err.code).to.equal('WSP_ERR_CLIENT_HANDSHAKE');
      expect(err.statusCode).to.equal(400);
      const reason = `invalid Sec-WebSocket-Extensions header: ${detail}`;
      expect(err.message).to.equal(`invalid client handshake request: ${reason}`);
      const response = parseResponse(exchange.text);
      expect(response.statusLine).to.equal('HTTP/1.1 400 Bad Request');
      expect(response.body).to.equal(`${reason}\n`);
      expect(exchange.ended).to.equal(true);
    });
  }

  it('ignores a garbled header without perMessageDeflate', async () => {
    const socket = net.connect(server.port, '127.0.0.1');
    socket.write(upgradeRequest({ 'Sec-WebSocket-Extensions': 'permessage-deflate;;' }));
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    const client = await accepted(server.next());
    expect(client.perMessageDeflate).to.equal(undefined);
    const response = parseResponse(chunk.toString('latin1'));
    expect(response.statusLine).to.equal('HTTP/1.1 101 Switching Protocols');
    expect(headerValues(response.headers, 'sec-websocket-extensions')).to.deep.equal([]);
    socket.destroy();
    client.socket.destroy();
  });

  it('answers an invalid request 400 before looking at its extensions', async () => {
    server.state.options = { perMessageDeflate: true };
    await rawExchange(server.port, upgradeRequest({ 'Sec-WebSocket-Extensions': 'permessage-deflate;;', Upgrade: undefined }));
    expect((await rejected(server.next())).message).to.contain('missing Upgrade header');
  });

  it('rejects invalid settings with a TypeError before writing anything', async () => {
    const [socket] = await Promise.all([
      new Promise<net.Socket>((resolve) => {
        const s = net.connect(server.port, '127.0.0.1', () => resolve(s));
      }),
    ]);
    const req = fakeRequest({ host: 'h', upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': KEY, 'sec-websocket-version': '13' });
    const err = await rejectionOf(acceptClient(req, socket, Buffer.alloc(0), { perMessageDeflate: { serverMaxWindowBits: 16 } }));
    expect(err).to.be.instanceOf(TypeError);
    expect(err.message).to.equal('options.perMessageDeflate.serverMaxWindowBits must be an integer from 8 to 15');
    expect(socket.bytesWritten).to.equal(0);
    socket.destroy();
  });
});
