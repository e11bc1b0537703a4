import { expect } from 'chai';
import { binaryFrame, closeFrame, continuationFrame, pingFrame, textFrame } from '../../src/index.js';
import { Breakpoints, Holds } from '../../src/inspector/breakpoints.js';
import { EventChannel } from '../../src/inspector/events.js';
import { Hub } from '../../src/inspector/hub.js';
import { INSPECTOR_DEFAULTS } from '../../src/inspector/options.js';
import { rowOf } from '../../src/inspector/row.js';
import { InspectedConn, type ObserverHost } from '../../src/inspector/observer.js';
import { InspectStage } from '../../src/inspector/stage.js';
import { runStage } from '../helpers/stage-run.js';
import { waitFor } from '../helpers/sockets.js';

function host(): ObserverHost & { closed: boolean; dispose(): void } {
  const channel = new EventChannel(1024 * 1024);
  const hub = new Hub({ server: undefined, port: 0, host: '127.0.0.1', token: undefined, pageDir: '.', ...INSPECTOR_DEFAULTS }, channel);
  return { hub, breakpoints: new Breakpoints(channel), holds: new Holds(channel, 30_000, 1024), closed: false, dispose: () => hub.dispose() };
}

describe('inspector/stage', () => {
  it('records every frame it passes on, continuation frames as their message\'s type, and close codes', async () => {
    const h = host();
    const conn = new InspectedConn(h, 'c', undefined);
    h.hub.publish(conn, {});
    const frames = [binaryFrame(Buffer.from([0xab]), false), pingFrame('p'), continuationFrame(Buffer.from([0xcd])), textFrame('t'), closeFrame(4000, 'bye')];
    const run = await runStage(new InspectStage(conn, 'upstream'), frames);
    expect(run.out).to.deep.equal(frames);
    const rows = [1, 2, 3, 4, 5].map((seq) => rowOf('c', conn.entry(seq)!));
    expect(rows.map((row) => [row.seq, row.type, row.from, row.preview])).to.deep.equal([
      [1, 'binary', 'upstream', 'ab'], [2, 'ping', 'upstream', 'p'], [3, 'continuation', 'upstream', 'cd'], [4, 'text', 'upstream', 't'], [5, 'close', 'upstream', 'bye'],
    ]);
    expect(conn.entry(3)!.binary).to.equal(true);
    expect(conn.info().closeCodes).to.deep.equal({ client: 4000, upstream: 4000 });
    h.dispose();
  });

  it('holds a matching data frame and passes what the hold ends with; control frames are never held', async () => {
    const h = host();
    const conn = new InspectedConn(h, 'c', undefined);
    h.breakpoints.add('client', 'x');
    const stage = new InspectStage(conn, 'client');
    const running = runStage(stage, [pingFrame('x'), textFrame('x1'), textFrame('y')]);
    await waitFor(() => h.holds.size === 1);
    expect(conn.entry(1)!.type).to.equal('ping');
    const [held] = h.holds.all();
    expect(h.holds.resolve(held!.id, 'release', { text: 'z' })).to.equal(undefined);
    const run = await running;
    expect(run.out.map((frame) => [frame.type, frame.payload.toString()])).to.deep.equal([['ping', 'x'], ['text', 'z'], ['text', 'y']]);
    expect(rowOf('c', conn.entry(2)!)).to.include({ edited: true, preview: 'z' });
    h.dispose();
  });

  it('lets frames pass unseen once its inspector is closed', async () => {
    const h = host();
    const conn = new InspectedConn(h, 'c', undefined);
    h.closed = true;
    const run = await runStage(new InspectStage(conn, 'client'), [textFrame('a')]);
    expect(run.out).to.have.length(1);
    expect(conn.length).to.equal(0);
    h.dispose();
  });
});
