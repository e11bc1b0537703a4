import { expect } from 'chai';
import { DEFAULT_DRAIN_TIMEOUT } from '../../src/cli/args.js';
import { USAGE, printUsageError } from '../../src/cli/usage.js';

describe('cli/usage', () => {
  describe('printUsageError', () => {
    it('prints one line and the hint, or one JSON record', () => {
      let text = '';
      printUsageError('pretty', '--listen: bad', { write: (line: string) => (text += line) });
      expect(text).to.equal("ws-frame-proxy: --listen: bad\nTry 'ws-frame-proxy --help' for the options.\n");
      text = '';
      printUsageError('json', '--listen: bad', { write: (line: string) => (text += line) });
      expect(text.endsWith('\n')).to.equal(true);
      expect(text.trimEnd()).to.not.include('\n');
      expect(JSON.parse(text)).to.include({ level: 'fatal', msg: '--listen: bad', exitCode: 2, pid: process.pid });
    });
  });

  it('USAGE names the defaults of the documented flags', () => {
    expect(USAGE).to.include('default 127.0.0.1:9000');
    expect(USAGE).to.include(`(default ${DEFAULT_DRAIN_TIMEOUT})`);
  });
});
