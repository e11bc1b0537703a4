import { expect } from 'chai';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../../src/cli/args.js';
import { prepareRecordDir, recordingFileName, withRecording } from '../../src/cli/record.js';
import { parseRecording } from '../../src/record/format.js';
import { RecordStage } from '../../src/transforms/record.js';
import type { Stage, StageContext } from '../../src/transforms/stage.js';
import { tap } from '../../src/transforms/tap.js';
import { until } from '../helpers/proxy-peers.js';
import { connect, killLeftovers, startCli, tempDir } from './helpers.js';

describe('cli/record', () => {
  let temp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    temp = tempDir();
  });
  afterEach(async () => {
    await killLeftovers();
    temp.remove();
  });

  it('names a file by time (UTC, sortable) and connection id', () => {
    const name = recordingFileName('/recs', 'a/b 7', new Date(Date.UTC(2026, 11, 1, 15, 33, 52, 123)));
    expect(name).to.equal(join('/recs', '20261201T153352.123Z-a_b_7.jsonl'));
  });

  it('puts a record() stage first in each direction, both directions of a proxy on one file, the config\'s stages after', () => {
    const user = tap(() => undefined);
    const transforms = withRecording({ client: () => [user] }, temp.dir, 4096)!;
    const proxy = {};
    const context = (role: 'client' | 'upstream'): StageContext => ({ role, id: '9', proxy: proxy as never });
    const client = transforms.client!(context('client'));
    const upstream = transforms.upstream!(context('upstream'));
    expect(client[0]).to.be.instanceOf(RecordStage);
    expect(client[1]).to.equal(user);
    expect(upstream).to.have.length(1);
    for (const stage of [...client, ...upstream] as Stage[]) stage.destroy();
    // Not what the server takes: left for the server to reject by name.
    expect(withRecording('nope' as never, temp.dir)).to.equal('nope');
  });

  it('prepares the directory (nested, created), or names the flag when it cannot be written', async () => {
    const nested = join(temp.dir, 'a', 'b');
    await prepareRecordDir(nested);
    expect(statSync(nested).isDirectory()).to.equal(true);
    const file = temp.write('file', 'x');
    let caught: unknown;
    await prepareRecordDir(join(file, 'sub')).catch((err: unknown) => (caught = err));
    expect(caught).to.be.instanceOf(UsageError);
    expect((caught as Error).message).to.match(/^--record ".*sub": cannot write there: /);
  });

  it('--record DIR writes one file per connection, both directions, within --record-max-bytes', async () => {
    const dir = join(temp.dir, 'recs');
    const cli = await startCli(['--record', dir, '--record-max-bytes', '2K']);
    const first = await connect(`${cli.url}/`);
    expect(await first.ask('hello')).to.equal('hello');
    first.ws.close(1000, 'bye');
    await first.closed;
    const second = await connect(`${cli.url}/`);
    for (let i = 0; i < 40; i++) await second.ask(`message number ${i}`);
    second.ws.close(1000);
    await second.closed;
    // Both files are complete once each ends with its last close, or with the summary of a stopped recording.
    await until(() => readdirSync(dir).length === 2 && readdirSync(dir).every((f) => /"(close|summary)"[^\n]*\n$/.test(readFileSync(join(dir, f), 'utf8'))));
    await cli.stop();
    const files = readdirSync(dir).sort();
    expect(files.every((f) => /^\d{8}T\d{6}\.\d{3}Z-\d+\.jsonl$/.test(f)), files.join()).to.equal(true);
    const [one, two] = files.map((f) => readFileSync(join(dir, f), 'utf8'));
    const parsed = parseRecording(one!);
    expect(parsed.header.connection).to.be.a('string');
    expect(parsed.frames.map((f) => `${f.from}:${f.type}:${f.data}`)).to.deep.equal([
      'client:text:hello', 'upstream:text:hello', 'client:close:bye', 'upstream:close:bye',
    ]);
    // The second connection went over its bound: the file stopped within it, with a summary.
    expect(Buffer.byteLength(two!)).to.be.at.most(2048);
    expect(parseRecording(two!).summary?.skipped).to.be.greaterThan(0);
  });
});
