import { execFile } from 'node:child_process';
import { expect } from 'chai';
import { closeFrame, continuationFrame, pingFrame, textFrame, binaryFrame } from '../../src/frame.js';
import { defaultLogger, describeFrame } from '../../src/proxy/log.js';

function runNode(code: string, env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', code], { env, cwd: process.cwd() }, (err, stdout, stderr) => {
      if (err) reject(err);
      else resolve({ stdout, stderr });
    });
  });
}

describe('proxy logging', () => {
  describe('describeFrame', () => {
    it('draws client frames -->, upstream frames <--, with type, len, fin and the payload', () => {
      expect(describeFrame('client', textFrame('hello world!'), false))
        .to.equal('[frame] client --> upstream text len=12 fin=true aggregating=false "hello world!"');
      expect(describeFrame('upstream', binaryFrame('abc', false), true))
        .to.equal('[frame] client <-- upstream binary len=3 fin=false aggregating=true "abc"');
      expect(describeFrame('upstream', continuationFrame(''), false))
        .to.equal('[frame] client <-- upstream continuation len=0 fin=true aggregating=false ""');
    });

    it('draws close frames --x / x-- with their code', () => {
      expect(describeFrame('client', closeFrame(1000, 'bye'), false))
        .to.equal('[frame] client --x upstream close code=1000 len=3 fin=true aggregating=false "bye"');
      expect(describeFrame('upstream', closeFrame(), false))
        .to.equal('[frame] client x-- upstream close len=0 fin=true aggregating=false ""');
      expect(describeFrame('upstream', pingFrame('1'), false))
        .to.equal('[frame] client <-- upstream ping len=1 fin=true aggregating=false "1"');
    });

    it('escapes the payload and cuts it at 24 characters with [...]', () => {
      expect(describeFrame('client', textFrame('line1\nline2\t"q"'), false)).to.contain('"line1\\nline2\\t\\"q\\""');
      const exactly24 = 'a'.repeat(24);
      expect(describeFrame('client', textFrame(exactly24), false)).to.match(new RegExp(`len=24 fin=true aggregating=false "${exactly24}"$`));
      const long = 'abcdefghijklmnopqrstuvwxyz0123456789';
      expect(describeFrame('client', textFrame(long), false))
        .to.equal('[frame] client --> upstream text len=36 fin=true aggregating=false "abcdefghijklmnopqrstuvwx"[...]');
      // A 1 MiB payload: only its beginning is decoded, its real length is shown.
      const big = describeFrame('client', binaryFrame(Buffer.alloc(1024 * 1024, 0x41)), false);
      expect(big).to.equal(`[frame] client --> upstream binary len=1048576 fin=true aggregating=false "${'A'.repeat(24)}"[...]`);
    });
  });

  describe('defaultLogger', () => {
    it('has the four levels, as functions', () => {
      const logger = defaultLogger();
      for (const level of ['debug', 'info', 'warn', 'error'] as const) expect(logger[level]).to.be.a('function');
    });

    const script = (levels: string) => `
      import { defaultLogger } from ${JSON.stringify(new URL('../../src/proxy/log.js', import.meta.url).href)};
      const logger = defaultLogger();
      for (const level of ${levels}) logger[level]('line at ' + level);
    `;

    it('writes to util.debuglog: shown with NODE_DEBUG=ws-frame-proxy', async () => {
      const { stderr, stdout } = await runNode(script('["debug", "info", "warn", "error"]'), { ...process.env, NODE_DEBUG: 'ws-frame-proxy' });
      expect(stdout).to.equal('');
      const lines = stderr.trim().split('\n');
      expect(lines).to.have.length(4);
      for (const [i, level] of ['debug', 'info', 'warn', 'error'].entries()) {
        expect(lines[i]).to.match(new RegExp(`^WS-FRAME-PROXY \\d+: line at ${level}$`));
      }
    });

    it('is silent without NODE_DEBUG', async () => {
      const env = { ...process.env };
      delete env.NODE_DEBUG;
      const { stderr, stdout } = await runNode(script('["debug", "error"]'), env);
      expect(stdout + stderr).to.equal('');
    });
  });
});
