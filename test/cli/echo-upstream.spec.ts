import { readFileSync, readdirSync } from 'node:fs';
import { expect } from 'chai';
import { WebSocket } from 'ws';
import { startEchoUpstream } from '../../src/cli/echo-upstream.js';
import { connect } from './helpers.js';

describe('cli/echo-upstream', () => {
  it('sends every message back with its type, on any path', async () => {
    const echo = await startEchoUpstream();
    try {
      expect(echo.url).to.match(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
      const client = await connect(`${echo.url}any/path?q=1`);
      expect(await client.ask('text')).to.equal('text');
      const binary = new Promise<[Buffer, boolean]>((resolve) => client.ws.once('message', (data: Buffer, isBinary: boolean) => resolve([data, isBinary])));
      client.ws.send(Buffer.from([1, 2, 3]));
      const [data, isBinary] = await binary;
      expect(isBinary).to.equal(true);
      expect([...data]).to.deep.equal([1, 2, 3]);
      client.ws.close(1000);
      expect(await client.closed).to.equal(1000);
    } finally {
      await echo.close();
    }
  });

  it('close() cuts the connections it holds and stops listening', async () => {
    const echo = await startEchoUpstream();
    const client = await connect(echo.url);
    await echo.close();
    expect(await client.closed).to.equal(1006);
    const refused = new WebSocket(echo.url);
    await new Promise<void>((resolve) => refused.once('error', () => resolve()));
  });

  it('is loaded by the CLI only by dynamic import: no other CLI module imports ws', () => {
    const dir = new URL('../../src/cli/', import.meta.url);
    const modules = ['../cli.js', ...readdirSync(dir).filter((name) => name.endsWith('.js'))];
    for (const name of modules) {
      const code = readFileSync(new URL(name, dir), 'utf8');
      const staticImports = [...code.matchAll(/^import\s[^;]*?from\s+'([^']+)'/gm)].map((match) => match[1]);
      if (name === 'echo-upstream.js') {
        expect(staticImports).to.include('ws');
        continue;
      }
      expect(staticImports, name).to.not.include('ws');
      expect(staticImports, name).to.not.include('./echo-upstream.js');
    }
    const serve = readFileSync(new URL('serve.js', dir), 'utf8');
    expect(serve).to.include("await import('./echo-upstream.js')");
  });

  it('is the only module of the package that uses a ws server; the library takes only permessage-deflate from ws', () => {
    const root = new URL('../../src/', import.meta.url);
    const importers = readdirSync(root, { recursive: true, encoding: 'utf8' })
      .filter((name) => name.endsWith('.js'))
      .filter((name) => /^import\s[^;]*?from\s+'ws'/m.test(readFileSync(new URL(name, root), 'utf8')))
      .sort();
    expect(importers).to.deep.equal(['cli/echo-upstream.js', 'protocol/ws-deflate.js']);
    expect(readFileSync(new URL('protocol/ws-deflate.js', root), 'utf8')).to.not.include('WebSocketServer');
  });
});
