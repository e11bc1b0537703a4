import { expect } from 'chai';
import { STOP_SIGNALS } from '../../src/cli/signals.js';
import { killLeftovers, rawConnection, startCli } from './helpers.js';

describe('cli/signals', () => {
  afterEach(killLeftovers);

  it('stops on SIGTERM and SIGINT', () => {
    expect(STOP_SIGNALS).to.deep.equal(['SIGTERM', 'SIGINT']);
  });

  for (const [second, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`a second signal (${second}) during a drain exits at once with ${code}`, async () => {
      const cli = await startCli(['--drain-timeout', '600000']);
      const stuck = await rawConnection(cli.url);
      await cli.waitFor((record) => record.msg === 'connection');
      cli.child.kill('SIGTERM');
      await cli.waitFor((record) => record.msg === 'draining');
      expect(await cli.stop(second)).to.equal(code);
      expect(cli.records().at(-1)).to.include({ level: 'warn', msg: 'second signal: exiting now', signal: second, exitCode: code });
      stuck.destroy();
    });
  }
});
