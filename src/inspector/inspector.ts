/**
 * `inspector()`: a live web page over a proxy's connections (docs/inspector.md), served on its own
 * HTTP server: the connections, their frames, sending, closing, breakpoints, downloads.
 *
 * @packageDocumentation
 */
import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ProxySummary } from '../proxy/lifecycle.js';
import type { WebSocketProxy } from '../proxy/websocket-proxy.js';
import type { ProxyServer } from '../server/proxy-server.js';
import type { StageFactory } from '../server/options.js';
import type { Route } from '../server/routes.js';
import type { Stage, StageContext } from '../transforms/stage.js';
import { Breakpoints, Holds } from './breakpoints.js';
import { EventChannel } from './events.js';
import { requestHandler } from './http.js';
import { type Conn, Hub } from './hub.js';
import { type InspectorOptions, type ResolvedInspectorOptions, resolveInspectorOptions } from './options.js';
import { InspectedConn } from './observer.js';
import { InspectStage } from './stage.js';
import type { InspectorEvents, TrackInfo } from './types.js';

/** The page's folder, from the compiled file (`dist/src/inspector/`) or the source (`src/inspector/`). */
function defaultPageDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  return /[\\/]dist[^\\/]*[\\/]src[\\/]inspector[\\/]$/.test(here)
    ? fileURLToPath(new URL('../../../src/inspector/page/', import.meta.url))
    : fileURLToPath(new URL('./page/', import.meta.url));
}

/**
 * A running inspector: see {@link inspector}.
 */
export class Inspector {
  /** @internal */
  readonly hub: Hub;
  /** @internal */
  readonly breakpoints: Breakpoints;
  /** @internal */
  readonly holds: Holds;
  /** @internal */
  readonly channel: EventChannel;
  /**
   * The inspector's stages, a factory per direction, for a `WebSocketProxy` made without a
   * `ProxyServer`: pass them as its `transforms` (after your own stages, to see what goes on the
   * wire), then call {@link Inspector.track} once it is connected. A server given as `server` gets
   * them on its own.
   */
  readonly transforms: { readonly client: StageFactory; readonly upstream: StageFactory };
  private readonly options: ResolvedInspectorOptions;
  private readonly conns = new WeakMap<WebSocketProxy, InspectedConn>();
  private readonly http: Server;
  private detach: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private stopped = false;

  /** @internal use {@link inspector} */
  constructor(options: ResolvedInspectorOptions) {
    this.options = options;
    this.channel = new EventChannel(options.maxPageBuffer, options.liveRowsPerSecond);
    this.hub = new Hub(options, this.channel);
    this.breakpoints = new Breakpoints(this.channel);
    this.holds = new Holds(this.channel, options.holdTimeout, options.maxPayloadBytes);
    const factory = (context: StageContext): readonly Stage[] => this.stagesFor(context);
    this.transforms = Object.freeze({ client: factory, upstream: factory });
    this.http = createServer({ keepAliveTimeout: 5000 }, requestHandler(this, { token: options.token, pageDir: options.pageDir }));
    if (options.server !== undefined) this.attach(options.server);
  }

  /** Whether {@link Inspector.close} was called: the stages then let frames pass unseen. */
  get closed(): boolean {
    return this.stopped;
  }

  /**
   * The page's URL (with the token in its query, if there is one); for a server bound to all
   * interfaces, through loopback. Empty before it listens and after `close()`.
   */
  get url(): string {
    const address = this.address();
    if (address === null) return '';
    // An unspecified address (all interfaces) is reached locally through loopback.
    const bound = address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '::1' : address.address;
    const host = bound.includes(':') ? `[${bound}]` : bound;
    const query = this.options.token === undefined ? '' : `?token=${encodeURIComponent(this.options.token)}`;
    return `http://${host}:${address.port}/${query}`;
  }

  /** The address the inspector's server is bound to, or null before it listens or after close. */
  address(): AddressInfo | null {
    const address = this.http.address();
    return address === null || typeof address === 'string' ? null : address;
  }

  /** @internal starts listening */
  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.options.port, this.options.host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
  }

  /**
   * Shows a bare proxy's connection (one made with {@link Inspector.transforms}), until it ends.
   * Call it once `connect()` succeeded: it calls `execute()` to learn when the connection ends
   * (`execute()` returns the same promise to every caller, so calling it yourself too is fine).
   *
   * @param proxy - the proxy
   * @param info - what to show of it: route, client address, upstream URL
   * @throws TypeError when the proxy was not made with the inspector's stages
   */
  track(proxy: WebSocketProxy, info: TrackInfo = {}): void {
    const conn = this.conns.get(proxy);
    if (conn === undefined) throw new TypeError('the proxy was not made with inspector.transforms');
    if (this.stopped) return;
    this.hub.publish(conn, info);
    proxy.execute().then(
      (summary) => this.ended(conn, summary),
      () => this.ended(conn, undefined),
    );
  }

  /**
   * Stops: releases held messages as they are, ends the pages' event streams, closes the server,
   * stops adding stages to the server's new connections and forgets what it kept. Connections
   * already open keep their stages, which let frames pass unseen from then on.
   */
  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  /** @internal the state a page starts from */
  hello(): InspectorEvents['hello'] {
    return { connections: this.hub.connections(), breakpoints: this.breakpoints.all(), held: this.holds.all() };
  }

  private async stop(): Promise<void> {
    this.stopped = true;
    this.detach?.();
    this.detach = undefined;
    this.holds.releaseAll();
    this.channel.close();
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    if (this.http.listening) await closed;
    this.hub.dispose();
  }

  /** The stages of one direction of a bare proxy (see {@link Inspector.transforms}). */
  private stagesFor(context: StageContext): readonly Stage[] {
    const observer = this.observerFor(context);
    return observer === undefined ? [] : [new InspectStage(observer, context.role)];
  }

  /**
   * The observer of one direction of a new proxy: its record, the same for both directions, made by
   * the first of the two calls.
   */
  private observerFor(context: StageContext): InspectedConn | undefined {
    const proxy = context.proxy;
    // Without a proxy (a bare pipeline) there is no connection to show, nor to send to.
    if (this.stopped || proxy === undefined) return undefined;
    return this.connOf(proxy, context.id);
  }

  /** The record of a proxy, made on first use (`id` is the proxy's: its stages' factories run before it has one). */
  private connOf(proxy: WebSocketProxy, id: string): InspectedConn {
    let conn = this.conns.get(proxy);
    if (conn === undefined) {
      conn = new InspectedConn(this, id, proxy);
      this.conns.set(proxy, conn);
    }
    return conn;
  }

  /**
   * Shows the server's new connections: its proxies reach the inspector through the proxy's frame
   * observer hook, at each direction's end (before `onFrame`), not through a stage of their own.
   */
  private attach(server: ProxyServer): void {
    const remove = server.addObserver({
      // The record is made with the proxy (as a stage factory would): a dormant connection's
      // directions start later, and a proxy made before the inspector was attached has none.
      connection: (proxy) => {
        if (!this.stopped) this.connOf(proxy, proxy.id);
      },
      direction: (context) => this.observerFor(context),
    });
    const onConnection = (proxy: WebSocketProxy, req: IncomingMessage, route: Route, upstreamUrl?: URL): void => {
      const conn = this.conns.get(proxy);
      if (conn === undefined) return;
      this.hub.publish(conn, {
        route: route.name ?? route.path,
        clientAddress: clientAddress(req),
        upstreamUrl: upstreamUrl === undefined ? null : `${upstreamUrl.protocol}//${upstreamUrl.host}${upstreamUrl.pathname}`,
      });
    };
    const onClose = (summary: ProxySummary, _route: Route, proxy: WebSocketProxy): void => {
      const conn = this.conns.get(proxy);
      if (conn !== undefined) this.ended(conn, summary);
    };
    server.on('connection', onConnection);
    server.on('close', onClose);
    this.detach = () => {
      remove();
      server.off('connection', onConnection);
      server.off('close', onClose);
    };
  }

  private ended(conn: Conn, summary: ProxySummary | undefined): void {
    if (this.stopped) return;
    this.holds.dropConnection(conn.id);
    this.hub.close(conn, summary);
  }
}

function clientAddress(req: IncomingMessage): string | null {
  const { remoteAddress, remotePort } = req.socket;
  if (remoteAddress === undefined) return null;
  const address = remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.') ? remoteAddress.slice(7) : remoteAddress;
  const host = address.includes(':') ? `[${address}]` : address;
  return remotePort === undefined ? address : `${host}:${remotePort}`;
}

/**
 * Starts an inspector: a web page (and its HTTP API, docs/inspector.md) showing the connections of
 * `server` live, to filter, send, close, set breakpoints and download recordings.
 *
 * ```ts
 * const server = createProxyServer({ target: 'ws://127.0.0.1:9001' });
 * await server.listen(8080);
 * const insp = await inspector({ server, port: 9229 });
 * console.log(`inspector at ${insp.url}`);
 * ```
 *
 * @param options - see {@link InspectorOptions}
 * @returns the running inspector, once it listens
 * @throws TypeError for an invalid option, naming it (a host that is not loopback without `token`);
 *   the listen error (EADDRINUSE...) as a rejection
 */
export async function inspector(options: InspectorOptions = {}): Promise<Inspector> {
  const resolved = resolveInspectorOptions(options, defaultPageDir());
  const running = new Inspector(resolved);
  try {
    await running.listen();
  } catch (err) {
    await running.close();
    throw err;
  }
  return running;
}
