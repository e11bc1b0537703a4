import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { WebSocket } from 'ws';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

/** Starts the CLI and resolves with the proxy URL it prints, and everything it printed so far. */
async function startCli(args: string[]): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const match = /listening on (ws:\/\/\S+?),/.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`cli exited with ${code}: ${output}`)));
  });
  return { child, url, output: () => output };
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = (await exited) as [number | null];
  return code;
}

describe('cli (npm start)', () => {
  it('proxies to the built-in echo upstream and logs each frame in both directions', async () => {
    const { child, url, output } = await startCli(['--port', '0']);
    try {
      expect(output()).to.match(/forwarding to ws:\/\/127\.0\.0\.1:\d+\/echo \(built-in echo server\)/);
      const ws = new WebSocket(url, { perMessageDeflate: false });
      const reply = await new Promise<string>((resolve, reject) => {
        ws.once('open', () => ws.send('hello through the proxy'));
        ws.once('message', (data) => resolve(String(data)));
        ws.once('error', reject);
      });
      expect(reply).to.equal('hello through the proxy');
      const closed = once(ws, 'close');
      ws.close(1000, 'bye');
      const [code] = (await closed) as [number];
      expect(code).to.equal(1000);
      // Wait for the proxy's summary line, then check the frame log.
      await new Promise<void>((resolve) => {
        const poll = () => (/closed: \{/.test(output()) ? resolve() : setTimeout(poll, 20));
        poll();
      });
      expect(output()).to.include('[frame] client --> upstream text len=23 fin=true');
      expect(output()).to.include('[frame] client <-- upstream text len=23 fin=true');
      expect(output()).to.include('forwarding close with code: 1000');
    } finally {
      expect(await stop(child)).to.equal(0);
    }
  });

  it('prints usage and exits 2 on an unknown option', async () => {
    const child = spawn(process.execPath, [CLI, '--bogus'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).to.equal(2);
    expect(stderr).to.include('Usage: ws-frame-proxy');
  });
});
