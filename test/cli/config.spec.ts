import { expect } from 'chai';
import { UsageError } from '../../src/cli/args.js';
import { loadConfig } from '../../src/cli/config.js';
import { connect, killLeftovers, namedUpstream, refusedStatus, startCli, tempDir } from './helpers.js';

/** The UsageError message loadConfig rejects with. */
async function failure(file: string, cwd: string): Promise<string> {
  try {
    await loadConfig(file, cwd);
  } catch (err) {
    expect(err).to.be.an.instanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`no error for ${file}`);
}

describe('cli/config', () => {
  let temp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    temp = tempDir();
  });
  afterEach(async () => {
    await killLeftovers();
    temp.remove();
  });

  describe('loadConfig', () => {
    it('reads a JSON file, relative to the working directory', async () => {
      temp.write('proxy.json', JSON.stringify({ target: 'ws://127.0.0.1:1', maxConnections: 3 }));
      expect(await loadConfig('proxy.json', temp.dir)).to.deep.equal({ target: 'ws://127.0.0.1:1', maxConnections: 3 });
    });

    it('takes a module\'s default export: the options, or a sync or async function returning them', async () => {
      temp.write('object.mjs', 'export default { target: "ws://127.0.0.1:1", authorize: () => true };');
      temp.write('sync.mjs', 'export default () => ({ target: "ws://127.0.0.1:2" });');
      temp.write('async.mjs', 'export default async () => { await null; return { target: "ws://127.0.0.1:3" }; };');
      temp.write('common.cjs', 'module.exports = { target: "ws://127.0.0.1:4" };');
      const object = await loadConfig('object.mjs', temp.dir);
      expect(object.target).to.equal('ws://127.0.0.1:1');
      expect(object.authorize).to.be.a('function');
      expect((await loadConfig('sync.mjs', temp.dir)).target).to.equal('ws://127.0.0.1:2');
      expect((await loadConfig(`${temp.dir}/async.mjs`, '/')).target).to.equal('ws://127.0.0.1:3');
      expect((await loadConfig('common.cjs', temp.dir)).target).to.equal('ws://127.0.0.1:4');
    });

    it('says why a file cannot be used, naming it', async () => {
      temp.write('bad.json', '{ "target": ');
      temp.write('list.json', '[]');
      temp.write('named.mjs', 'export const options = {};');
      temp.write('throws.mjs', 'throw new Error("boom at import");');
      temp.write('fails.mjs', 'export default async () => { throw new Error("no secrets today"); };');
      temp.write('number.mjs', 'export default () => 42;');
      temp.write('proxy.yaml', 'target: x');
      expect(await failure('missing.json', temp.dir)).to.equal('--config "missing.json": cannot read it: no such file');
      expect(await failure('missing.mjs', temp.dir)).to.equal('--config "missing.mjs": cannot read it: no such file');
      expect(await failure('bad.json', temp.dir)).to.match(/^--config "bad\.json": not valid JSON: /);
      expect(await failure('list.json', temp.dir)).to.equal('--config "list.json": expected an object of createProxyServer options, got an array');
      expect(await failure('named.mjs', temp.dir)).to.equal('--config "named.mjs": has no default export (export default { routes: [...] })');
      expect(await failure('throws.mjs', temp.dir)).to.equal('--config "throws.mjs": cannot load it: boom at import');
      expect(await failure('fails.mjs', temp.dir)).to.equal('--config "fails.mjs": its default export threw: no secrets today');
      expect(await failure('number.mjs', temp.dir)).to.equal('--config "number.mjs": expected an object of createProxyServer options, got a number');
      expect(await failure('proxy.yaml', temp.dir)).to.equal('--config "proxy.yaml": expected a .json, .mjs or .js file');
      expect(await failure('.', temp.dir)).to.equal('--config ".": expected a .json, .mjs or .js file');
    });
  });

  it('runs a .mjs config end to end: its route, its authorize hook (401) and its stage factory; a flag overrides its limit', async () => {
    const upstream = await namedUpstream('up');
    const transforms = new URL('../../src/transforms/index.js', import.meta.url).href;
    temp.write('proxy.mjs', `
      import { mapText } from ${JSON.stringify(transforms)};
      process.emitWarning('a warning from the config');
      export default async () => ({
        routes: [{ path: '/api', target: ${JSON.stringify(`${upstream.url}/v1`)} }],
        authorize: (req) => req.headers.authorization === 'Bearer good'
          || { status: 401, headers: { 'www-authenticate': 'Bearer' }, body: 'who are you?' },
        transforms: { upstream: () => [mapText((text) => text.toUpperCase())] },
        maxConnections: 1,
      });
    `);
    const cli = await startCli(['--config', `${temp.dir}/proxy.mjs`, '--max-connections', '2']);
    try {
      expect(cli.listening.routes).to.deep.equal([`/api -> ${upstream.url}/v1`]);
      expect(await refusedStatus(`${cli.url}/api/x`)).to.equal(401);
      expect(await refusedStatus(`${cli.url}/elsewhere`, { authorization: 'Bearer good' })).to.equal(404);
      const headers = { authorization: 'Bearer good' };
      const first = await connect(`${cli.url}/api/x?q=1`, { headers });
      const second = await connect(`${cli.url}/api/y`, { headers });
      expect(await first.ask('hello')).to.equal('UP /V1/X?Q=1: HELLO');
      expect(await second.ask('again')).to.equal('UP /V1/Y: AGAIN');
      const refusal = await cli.waitFor((record) => record.msg === 'refuse' && record.outcome === 401);
      expect(refusal).to.include({ reason: 'authorize refused (401)', route: '/api', path: '/api/x' });
      first.ws.close();
      second.ws.close();
      await Promise.all([first.closed, second.closed]);
      expect(await cli.stop()).to.equal(0);
      // With --log json (the default here), even Node's warnings are records.
      expect(cli.stderr()).to.equal('');
      expect(cli.records().find((record) => record.msg === 'node warning')).to.deep.include({ level: 'warn' });
    } finally {
      await upstream.close();
    }
  });
});
