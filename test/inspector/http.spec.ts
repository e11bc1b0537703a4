import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { onCleanup, releaseAll } from '../proxy/rig.js';
import { call, sse, started } from './helpers.js';

/** A page folder with a few files, and a secret file next to it. */
async function pageFolder(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'inspector-page-'));
  onCleanup(() => rm(root, { recursive: true, force: true }));
  const dir = join(root, 'page');
  await mkdir(join(dir, 'lib'), { recursive: true });
  await writeFile(join(dir, 'index.html'), '<!doctype html><title>t</title>');
  await writeFile(join(dir, 'app.js'), 'export const app = 1;');
  await writeFile(join(dir, 'style.css'), 'body {}');
  await writeFile(join(dir, 'lib', 'x.js'), 'export {};');
  await writeFile(join(dir, '.hidden.js'), 'secret');
  await writeFile(join(dir, 'notes.txt'), 'not served');
  await writeFile(join(root, 'secret.js'), 'secret');
  return dir;
}

/** A request with a raw path, as written (http.request would keep it too, but says so less plainly). */
async function rawGet(port: number, path: string): Promise<number> {
  const socket = net.connect(port, '127.0.0.1');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  let text = '';
  for await (const chunk of socket) text += String(chunk);
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
}

describe('inspector/http', () => {
  afterEach(releaseAll);

  it('serves the page: / as index.html, its files with their content types, never cached', async () => {
    const insp = await started({ pageDir: await pageFolder() });
    const port = insp.address()!.port;
    const index = await call(port, 'GET', '/');
    expect(index.status).to.equal(200);
    expect(index.headers['content-type']).to.equal('text/html; charset=utf-8');
    expect(index.headers['cache-control']).to.equal('no-store');
    expect(index.headers['x-frame-options']).to.equal('DENY');
    expect(index.text).to.equal('<!doctype html><title>t</title>');
    expect((await call(port, 'GET', '/app.js')).headers['content-type']).to.equal('text/javascript; charset=utf-8');
    expect((await call(port, 'GET', '/style.css')).headers['content-type']).to.equal('text/css; charset=utf-8');
    expect((await call(port, 'GET', '/lib/x.js')).status).to.equal(200);
    expect((await call(port, 'GET', '/missing.js')).status).to.equal(404);
    expect((await call(port, 'POST', '/app.js')).status).to.equal(405);
  });

  it('refuses paths out of the page folder, hidden files and other types', async () => {
    const insp = await started({ pageDir: await pageFolder() });
    const port = insp.address()!.port;
    for (const path of ['/../secret.js', '/%2e%2e/secret.js', '/..%2fsecret.js', '/lib/../../secret.js', '/.hidden.js', '/notes.txt', '//etc/passwd', '/lib%2f..%2f..%2fsecret.js']) {
      expect(await rawGet(port, path), path).to.equal(404);
    }
  });

  it('serves the package page by default', async () => {
    const insp = await started();
    const index = await call(insp.address()!.port, 'GET', '/');
    expect(index.status).to.equal(200);
    expect(index.headers['content-type']).to.equal('text/html; charset=utf-8');
  });

  it('asks every request for the token, in the query or as a bearer, compared whole', async () => {
    const insp = await started({ token: 's3cret', pageDir: await pageFolder() });
    const port = insp.address()!.port;
    expect(insp.url).to.equal(`http://127.0.0.1:${port}/?token=s3cret`);
    for (const path of ['/', '/app.js', '/api/connections', '/api/events', '/api/connections?token=s3cre', '/api/connections?token=s3cret2']) {
      const answer = await call(port, 'GET', path);
      expect(answer.status, path).to.equal(401);
      expect(answer.json.error).to.match(/token/);
    }
    expect((await call(port, 'GET', '/api/connections?token=s3cret')).status).to.equal(200);
    expect((await call(port, 'GET', '/?token=s3cret')).status).to.equal(200);
    expect((await call(port, 'GET', '/api/connections', undefined, { authorization: 'Bearer s3cret' })).status).to.equal(200);
    expect((await call(port, 'GET', '/api/connections', undefined, { authorization: 'Bearer nope' })).status).to.equal(401);
    const page = await sse(port, '?token=s3cret');
    expect((await page.next('hello')).connections).to.deep.equal([]);
  });

  it('without a token, answers only requests for a loopback host name (no DNS rebinding)', async () => {
    const insp = await started();
    const port = insp.address()!.port;
    expect(insp.url).to.equal(`http://127.0.0.1:${port}/`);
    expect((await call(port, 'GET', '/api/connections', undefined, { host: `localhost:${port}` })).status).to.equal(200);
    expect((await call(port, 'GET', '/api/connections', undefined, { host: `[::1]:${port}` })).status).to.equal(200);
    expect((await call(port, 'GET', '/api/connections', undefined, { host: `evil.example:${port}` })).status).to.equal(403);
  });

  it('answers 404 with an error for unknown API paths and ids, 405 for a wrong method', async () => {
    const insp = await started();
    const port = insp.address()!.port;
    for (const path of ['/api/nothing', '/api/connections/nope/messages', '/api/connections/nope/recording.jsonl', '/api/held']) {
      const answer = await call(port, 'GET', path);
      expect(answer.status, path).to.equal(404);
      expect(answer.json.error).to.be.a('string');
    }
    expect((await call(port, 'POST', '/api/held/1', { action: 'release' })).status).to.equal(404);
    expect((await call(port, 'DELETE', '/api/connections')).status).to.equal(405);
    expect((await call(port, 'GET', '/api/connections/%zz')).status).to.equal(400);
  });

  it('binds ::1 as well, and writes its URL with brackets', async () => {
    const insp = await started({ host: '::1', token: 't' });
    expect(insp.address()!.address).to.equal('::1');
    expect(insp.url).to.equal(`http://[::1]:${insp.address()!.port}/?token=t`);
  });
});
