import type { IncomingMessage } from 'node:http';
import { expect } from 'chai';
import { checkTargetUrl, compileRoutes, matchRoute, type Route } from '../../src/server/routes.js';

function request(url: string, host = 'proxy.test:8080'): IncomingMessage {
  return { url, headers: { host } } as unknown as IncomingMessage;
}

async function target(routes: Route[], url: string, host?: string): Promise<string | undefined> {
  const match = matchRoute(compileRoutes(routes), request(url, host));
  return match === undefined ? undefined : (await match.url).href;
}

describe('server/routes', () => {
  describe('compileRoutes()', () => {
    it('refuses a path that does not start with /, a bad parameter, a repeated parameter', () => {
      expect(() => compileRoutes([{ path: 'api', target: 'ws://u' }])).to.throw(TypeError, 'options.routes[0].path must be a string starting with "/"');
      expect(() => compileRoutes([{ path: '/a/:', target: 'ws://u' }])).to.throw(TypeError, 'not a valid parameter');
      expect(() => compileRoutes([{ path: '/a/:x/:x', target: 'ws://u' }])).to.throw(TypeError, 'parameter "x" appears twice');
    });

    it('refuses an invalid target URL or scheme at compile time, naming the route', () => {
      expect(() => compileRoutes([{ path: '/', target: 'ws://u' }, { path: '/b', target: 'not a url' }]))
        .to.throw(TypeError, 'options.routes[1].target is not a valid URL');
      expect(() => compileRoutes([{ path: '/', target: 'ftp://u/' }])).to.throw(TypeError, 'must be a ws:, wss:, http: or https: URL, not ftp:');
      expect(() => compileRoutes([{ path: '/', target: 42 as unknown as string }])).to.throw(TypeError, 'options.routes[0].target must be');
    });

    it('refuses a target parameter the path does not have', () => {
      expect(() => compileRoutes([{ path: '/chat', target: 'ws://u/rooms/:room' }])).to.throw(TypeError, 'uses parameter ":room"');
    });

    it('refuses bad hosts, headers and names', () => {
      expect(() => compileRoutes([{ path: '/', host: 'a b', target: 'ws://u' }])).to.throw(TypeError, 'host must be');
      expect(() => compileRoutes([{ path: '/', target: 'ws://u', headers: { 'x y': 'v' } }])).to.throw(TypeError, 'not a valid header name');
      expect(() => compileRoutes([{ path: '/', target: 'ws://u', headers: { a: 1 as unknown as string } }])).to.throw(TypeError, 'must be a string or null');
      expect(() => compileRoutes([{ path: '/', target: 'ws://u', headers: { a: 'x\r\ny: z' } }])).to.throw(TypeError, 'CR, LF or NUL');
      expect(() => compileRoutes([{ path: '/', target: 'ws://u', name: '' }])).to.throw(TypeError, 'name must be a non-empty string');
      expect(() => compileRoutes({} as unknown as Route[])).to.throw(TypeError, 'must be an array');
    });

    it('takes http: and https: targets as ws: and wss:, and drops a fragment', () => {
      expect(checkTargetUrl('http://u:1/a#frag', 't').href).to.equal('ws://u:1/a');
      expect(checkTargetUrl('https://u/', 't').href).to.equal('wss://u/');
    });
  });

  describe('matchRoute()', () => {
    it('matches a prefix at segment boundaries only', async () => {
      const routes = [{ path: '/api', target: 'ws://up:1' }];
      expect(await target(routes, '/api')).to.equal('ws://up:1/');
      expect(await target(routes, '/api/')).to.equal('ws://up:1/');
      expect(await target(routes, '/api/x/y')).to.equal('ws://up:1/x/y');
      expect(await target(routes, '/apix')).to.equal(undefined);
      expect(await target(routes, '/ap')).to.equal(undefined);
      expect(await target(routes, '/')).to.equal(undefined);
    });

    it('appends the rest of the path to the base path, and the query to the base query', async () => {
      expect(await target([{ path: '/api/', target: 'ws://up/base' }], '/api/x?y=1&z')).to.equal('ws://up/base/x?y=1&z');
      expect(await target([{ path: '/api', target: 'ws://up/base/' }], '/api/x')).to.equal('ws://up/base/x');
      expect(await target([{ path: '/api', target: 'ws://up/base?token=t' }], '/api?room=1')).to.equal('ws://up/base?token=t&room=1');
      expect(await target([{ path: '/api', target: 'ws://up/base?token=t' }], '/api')).to.equal('ws://up/base?token=t');
      expect(await target([{ path: '/', target: 'ws://up:9/' }], '/chat?room=1')).to.equal('ws://up:9/chat?room=1');
    });

    it('fills named parameters, decoded, into the target path, encoded', async () => {
      const routes = [{ path: '/chat/:room', target: 'wss://up/rooms/:room/ws' }];
      expect(await target(routes, '/chat/lobby?x=1')).to.equal('wss://up/rooms/lobby/ws?x=1');
      expect(await target(routes, '/chat/a%20b/more')).to.equal('wss://up/rooms/a%20b/ws/more');
      expect(await target(routes, '/chat/')).to.equal(undefined);
      expect(await target(routes, '/chat')).to.equal(undefined);
      // Not valid percent-encoding: no match rather than a throw.
      expect(await target(routes, '/chat/%E0%A4%A')).to.equal(undefined);
      const match = matchRoute(compileRoutes(routes), request('/chat/a%2Fb'));
      expect(match?.params).to.deep.equal({ room: 'a/b' });
    });

    it('takes the first route that matches', async () => {
      const routes = [
        { path: '/a/b', target: 'ws://first' },
        { path: '/a', target: 'ws://second' },
        { path: '/', target: 'ws://third' },
      ];
      expect(await target(routes, '/a/b/c')).to.equal('ws://first/c');
      expect(await target(routes, '/a/bc')).to.equal('ws://second/bc');
      expect(await target(routes, '/z')).to.equal('ws://third/z');
      expect(matchRoute(compileRoutes(routes), request('/a'))?.name).to.equal('/a');
    });

    it('matches the host without its port, case-insensitively, and *. for subdomains', async () => {
      const routes = [
        { path: '/', host: 'API.example.com', target: 'ws://api' },
        { path: '/', host: '*.example.com', target: 'ws://sub' },
        { path: '/', host: '[::1]', target: 'ws://v6' },
      ];
      expect(await target(routes, '/', 'api.example.COM:8443')).to.equal('ws://api/');
      expect(await target(routes, '/', 'x.y.example.com')).to.equal('ws://sub/');
      expect(await target(routes, '/', 'example.com')).to.equal(undefined);
      expect(await target(routes, '/', '[::1]:9000')).to.equal('ws://v6/');
      expect(await target(routes, '/', '')).to.equal(undefined);
    });

    it('calls a target function with the request and parameters, and checks what it returns', async () => {
      const seen: unknown[] = [];
      const routes: Route[] = [{
        path: '/t/:id',
        target: async (req, params) => {
          seen.push(req.url, params);
          return params.id === 'bad' ? 'nope' : `ws://up/${params.id}`;
        },
      }];
      expect(await target(routes, '/t/7?q')).to.equal('ws://up/7');
      expect(seen).to.deep.equal(['/t/7?q', { id: '7' }]);
      const match = matchRoute(compileRoutes(routes), request('/t/bad'));
      let error: unknown;
      await match!.url.catch((err: unknown) => (error = err));
      expect(error).to.be.instanceOf(TypeError);
      expect((error as Error).message).to.include('is not a valid URL');
    });

    it('does not match a request target that is not a path', () => {
      expect(matchRoute(compileRoutes([{ path: '/', target: 'ws://u' }]), request('http://other/x'))).to.equal(undefined);
      expect(matchRoute(compileRoutes([{ path: '/', target: 'ws://u' }]), request('*'))).to.equal(undefined);
    });
  });
});
