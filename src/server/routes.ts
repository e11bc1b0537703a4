/**
 * Routes of a `ProxyServer`: which upstream a client's upgrade request goes to, by host and path,
 * checked when the server is created so that a bad route is a `TypeError` at start, never a 502 per
 * connection.
 *
 * @packageDocumentation
 */
import type { IncomingMessage } from 'node:http';

/** Named parameters of a matched route path, e.g. `{ room: 'lobby' }` for `/chat/:room`. */
export type RouteParams = Readonly<Record<string, string>>;

/**
 * Where a route's connections go: a base URL (`ws:`, `wss:`, or `http:` / `https:`, taken as `ws:` /
 * `wss:`), or a function that returns the full upstream URL for each request.
 */
export type RouteTarget =
  | string
  | URL
  | ((req: IncomingMessage, params: RouteParams) => string | URL | Promise<string | URL>);

/** One route of a `ProxyServer`. */
export interface Route {
  /**
   * Path prefix, matched at segment boundaries: `/api` matches `/api`, `/api/` and `/api/x`, not
   * `/apix`. A segment `:name` matches any one non-empty segment and makes it a parameter. `/`
   * matches every path.
   */
  path: string;
  /**
   * Host the request must be for (its `Host` header, without the port, case-insensitive):
   * `example.com`, or `*.example.com` for any subdomain (not the apex itself).
   * @defaultValue any host
   */
  host?: string;
  /**
   * The upstream. For a base URL, the rest of the client's path after the matched prefix is appended
   * to the URL's path, and the client's query to the URL's query; `:name` segments in the URL's path
   * are replaced with the route's parameters. A function is given the request and the parameters and
   * returns the whole URL (nothing is appended); an invalid URL it returns is answered 500.
   */
  target: RouteTarget;
  /**
   * Request headers for this route's upstream handshakes: a string sets a header, `null` removes a
   * forwarded one (e.g. `{ cookie: null }`). Applied after the server's `headers`.
   * @defaultValue {}
   */
  headers?: Readonly<Record<string, string | null>>;
  /**
   * The route's name in metrics labels and events.
   * @defaultValue the `path`
   */
  name?: string;
}

/** A route matched to a request. */
export interface RouteMatch {
  /** The route, as given. */
  readonly route: Route;
  /** Its name (see {@link Route.name}). */
  readonly name: string;
  /** The path's parameters. */
  readonly params: RouteParams;
  /** The upstream URL, or why none could be made (answered 500). */
  readonly url: Promise<URL>;
}

type Segment = { literal: string } | { param: string };

/** A route, checked and ready to match. @internal */
export interface CompiledRoute {
  readonly route: Route;
  readonly name: string;
  readonly segments: readonly Segment[];
  /** Lower-case host, or its suffix with the leading dot for `*.`, or undefined. */
  readonly host: string | undefined;
  readonly wildcardHost: boolean;
  /** The checked base URL, for a URL target. */
  readonly base: URL | undefined;
}

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HOST_NAME = /^(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.?$|^\[[0-9a-f:.]+\]$/;

/**
 * Checks and compiles routes.
 *
 * @param routes - the routes, in the order they are tried
 * @param name - the option's name, for error messages
 * @throws TypeError naming the route and what is wrong with it (a path not starting with `/`, an
 *   invalid parameter, a target that is not a valid `ws:` / `wss:` / `http:` / `https:` URL or a
 *   function, a target parameter the path does not have, a bad host or header)
 */
export function compileRoutes(routes: readonly Route[], name = 'options.routes'): CompiledRoute[] {
  if (!Array.isArray(routes)) throw new TypeError(`${name} must be an array of routes`);
  return routes.map((route, index) => compileRoute(route, `${name}[${index}]`));
}

/**
 * Checks and compiles one route.
 *
 * @param route - the route
 * @param name - its name in error messages (`options.routes[2]`)
 * @throws TypeError as {@link compileRoutes}
 * @internal
 */
export function compileRoute(route: Route, name: string): CompiledRoute {
  if (route === null || typeof route !== 'object') throw new TypeError(`${name} must be an object { path, target }`);
  const { path, host, target, headers } = route;
  if (typeof path !== 'string' || !path.startsWith('/')) throw new TypeError(`${name}.path must be a string starting with "/"`);
  const segments: Segment[] = [];
  const params = new Set<string>();
  for (const part of path.split('/').slice(1)) {
    if (part === '') continue;
    if (part.startsWith(':')) {
      const param = part.slice(1);
      if (!PARAM_NAME.test(param)) throw new TypeError(`${name}.path: "${part}" is not a valid parameter (":" then a name)`);
      if (params.has(param)) throw new TypeError(`${name}.path: parameter "${param}" appears twice`);
      params.add(param);
      segments.push({ param });
    } else {
      segments.push({ literal: part });
    }
  }
  let hostName: string | undefined;
  let wildcardHost = false;
  if (host !== undefined) {
    const lower = typeof host === 'string' ? host.toLowerCase() : '';
    if (!HOST_NAME.test(lower)) throw new TypeError(`${name}.host must be a host name, "*.domain" or a bracketed IPv6 address`);
    wildcardHost = lower.startsWith('*.');
    hostName = wildcardHost ? lower.slice(1) : lower;
  }
  let base: URL | undefined;
  if (typeof target === 'string' || target instanceof URL) {
    base = checkTargetUrl(target, `${name}.target`);
    for (const part of base.pathname.split('/')) {
      if (part.startsWith(':') && !params.has(part.slice(1))) {
        throw new TypeError(`${name}.target uses parameter "${part}" that ${name}.path does not have`);
      }
    }
  } else if (typeof target !== 'function') {
    throw new TypeError(`${name}.target must be a ws:, wss:, http: or https: URL, or a function (req, params) => url`);
  }
  if (headers !== undefined) checkHeaders(headers, `${name}.headers`);
  if (route.name !== undefined && (typeof route.name !== 'string' || route.name === '')) {
    throw new TypeError(`${name}.name must be a non-empty string`);
  }
  return { route, name: route.name ?? path, segments, host: hostName, wildcardHost, base };
}

/**
 * Checks a header map of `Route.headers` / the server's `headers`.
 *
 * @param headers - the map
 * @param name - the option's name
 * @throws TypeError for a value that is neither a string nor null, or an invalid header name
 */
export function checkHeaders(headers: unknown, name: string): void {
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
    throw new TypeError(`${name} must be an object of header names to a string (set) or null (remove)`);
  }
  for (const [header, value] of Object.entries(headers)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(header)) throw new TypeError(`${name}: "${header}" is not a valid header name`);
    if (value !== null && typeof value !== 'string') throw new TypeError(`${name}.${header} must be a string or null`);
    if (typeof value === 'string' && /[\r\n\0]/.test(value)) throw new TypeError(`${name}.${header} must not contain CR, LF or NUL`);
  }
}

/**
 * Parses an upstream URL: `ws:` / `wss:`, or `http:` / `https:` taken as `ws:` / `wss:`; the
 * fragment is dropped.
 *
 * @param value - the URL
 * @param name - what it is, for the error message
 * @throws TypeError when it is not such a URL
 */
export function checkTargetUrl(value: string | URL, name: string): URL {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new TypeError(`${name} is not a valid URL: ${JSON.stringify(String(value))}`);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new TypeError(`${name} must be a ws:, wss:, http: or https: URL, not ${url.protocol}`);
  }
  url.hash = '';
  return url;
}

/**
 * The first route that matches a request, with its parameters and its upstream URL.
 *
 * @param routes - the compiled routes
 * @param req - the upgrade request
 * @returns the match, or undefined for none (answered 404); a path whose parameter is not valid
 *   percent-encoding does not match
 */
export function matchRoute(routes: readonly CompiledRoute[], req: IncomingMessage): RouteMatch | undefined {
  const rawUrl = req.url ?? '/';
  const queryAt = rawUrl.indexOf('?');
  const pathname = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
  const search = queryAt === -1 ? '' : rawUrl.slice(queryAt);
  if (!pathname.startsWith('/')) return undefined;
  const host = requestHost(req);
  for (const compiled of routes) {
    if (compiled.host !== undefined) {
      if (host === undefined) continue;
      if (compiled.wildcardHost ? !host.endsWith(compiled.host) : host !== compiled.host) continue;
    }
    const found = matchPath(compiled.segments, pathname);
    if (found === undefined) continue;
    const [params, rest] = found;
    const target = compiled.route.target;
    const url = compiled.base !== undefined
      ? Promise.resolve(joinUrl(compiled.base, params, rest, search))
      : resolveTarget(target as Exclude<RouteTarget, string | URL>, req, params);
    // A route without a consumer (the request was refused before) must not leave an unhandled rejection.
    url.catch(ignore);
    return { route: compiled.route, name: compiled.name, params, url };
  }
  return undefined;
}

function ignore(): void {}

async function resolveTarget(target: Exclude<RouteTarget, string | URL>, req: IncomingMessage, params: RouteParams): Promise<URL> {
  return checkTargetUrl(await target(req, params), 'the route target function\'s URL');
}

/** The request's host name: its `Host` without the port, lower case; undefined when absent. */
function requestHost(req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  if (host === undefined || host === '') return undefined;
  const lower = host.toLowerCase();
  if (lower.startsWith('[')) {
    const end = lower.indexOf(']');
    return end === -1 ? lower : lower.slice(0, end + 1);
  }
  const colon = lower.indexOf(':');
  return colon === -1 ? lower : lower.slice(0, colon);
}

/** Matches a path against a route's segments: its parameters and the rest of the path, or undefined. */
function matchPath(segments: readonly Segment[], pathname: string): [RouteParams, string] | undefined {
  const params: Record<string, string> = {};
  let at = 0;
  for (const segment of segments) {
    if (pathname.charCodeAt(at) !== 0x2f) return undefined;
    const end = pathname.indexOf('/', at + 1);
    const part = pathname.slice(at + 1, end === -1 ? pathname.length : end);
    if ('literal' in segment) {
      if (part !== segment.literal) return undefined;
    } else {
      if (part === '') return undefined;
      try {
        params[segment.param] = decodeURIComponent(part);
      } catch {
        return undefined;
      }
    }
    at = end === -1 ? pathname.length : end;
  }
  return [params, pathname.slice(at)];
}

/** The base URL with its parameters filled in, the rest of the path appended and the queries joined. */
function joinUrl(base: URL, params: RouteParams, rest: string, search: string): URL {
  const url = new URL(base.href);
  let path = url.pathname
    .split('/')
    .map((part) => (part.startsWith(':') ? encodeURIComponent(params[part.slice(1)]!) : part))
    .join('/');
  if (rest !== '') path = (path.endsWith('/') ? path.slice(0, -1) : path) + rest;
  url.pathname = path === '' ? '/' : path;
  if (search.length > 1) url.search = url.search.length > 1 ? `${url.search}&${search.slice(1)}` : search;
  return url;
}
