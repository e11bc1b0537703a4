import { expect } from 'chai';
import { binaryFrame, closeFrame, textFrame } from '../../src/index.js';
import { EventChannel } from '../../src/inspector/events.js';
import { Conn, Hub } from '../../src/inspector/hub.js';
import { INSPECTOR_DEFAULTS, type ResolvedInspectorOptions } from '../../src/inspector/options.js';
import { ENTRY_OVERHEAD, rowOf } from '../../src/inspector/row.js';
import { releaseAll } from '../proxy/rig.js';
import { call, inspectRig } from './helpers.js';

function options(extra: Partial<ResolvedInspectorOptions> = {}): ResolvedInspectorOptions {
  return { server: undefined, port: 0, host: '127.0.0.1', token: undefined, pageDir: '.', ...INSPECTOR_DEFAULTS, ...extra };
}

const hubs: Hub[] = [];

function hub(extra: Partial<ResolvedInspectorOptions> = {}): Hub {
  const made = new Hub(options(extra), new EventChannel(1024 * 1024));
  hubs.push(made);
  return made;
}

function conn(h: Hub, id: string): Conn {
  const made = new Conn(id, undefined);
  h.publish(made, { route: '/' });
  return made;
}

/** Sequence numbers still kept by a connection. */
function seqs(c: Conn): number[] {
  const kept: number[] = [];
  for (let i = 0; i < c.length; i++) kept.push(c.at(i)!.seq);
  return kept;
}

describe('inspector/hub', () => {
  afterEach(async () => {
    for (const h of hubs.splice(0)) h.dispose();
    await releaseAll();
  });

  it('keeps the last maxMessagesPerConnection frames of a connection, numbered from 1', () => {
    const h = hub({ maxMessagesPerConnection: 3 });
    const c = conn(h, 'a');
    for (let i = 1; i <= 5; i++) h.record(c, textFrame(`m${i}`), 'client', false);
    expect(seqs(c)).to.deep.equal([3, 4, 5]);
    expect(c.entry(2)).to.equal(undefined);
    expect(rowOf('a', c.entry(4)!).preview).to.equal('m4');
    expect(c.fromClient).to.deep.equal({ frames: 5, bytes: 10 });
    expect(h.bytes).to.equal(c.bytes);
  });

  it('keeps at most maxBytesPerConnection, but always the last frame', () => {
    const h = hub({ maxBytesPerConnection: 2 * (ENTRY_OVERHEAD + 100), maxPayloadBytes: 1000 });
    const c = conn(h, 'a');
    for (let i = 0; i < 4; i++) h.record(c, binaryFrame(Buffer.alloc(50)), 'upstream', true);
    expect(c.bytes).to.be.at.most(2 * (ENTRY_OVERHEAD + 100));
    expect(c.length).to.be.at.least(1);
    h.record(c, binaryFrame(Buffer.alloc(900)), 'upstream', true);
    expect(seqs(c)).to.deep.equal([5]);
  });

  it('copies payloads: a frame whose buffer changes later keeps what it was', () => {
    const h = hub();
    const c = conn(h, 'a');
    const payload = Buffer.from('original');
    h.record(c, binaryFrame(payload), 'client', true);
    payload.fill(0);
    expect(c.entry(1)!.payload.toString()).to.equal('original');
  });

  it('evicts closed connections first, oldest first, past maxBytes, then the oldest frames of live ones', () => {
    // What a 1000-byte binary frame counts for: its payload copy and its entry.
    const entry = 1000 + ENTRY_OVERHEAD;
    const h = hub({ maxBytes: 5 * entry + 100, maxPayloadBytes: 1000 });
    const frame = binaryFrame(Buffer.alloc(1000));
    const [a, b, live] = [conn(h, 'a'), conn(h, 'b'), conn(h, 'live')];
    h.record(a, frame, 'client', true);
    h.record(b, frame, 'client', true);
    h.close(a, undefined);
    h.close(b, undefined);
    for (let i = 0; i < 3; i++) h.record(live, frame, 'client', true);
    expect(h.connections().map((info) => info.id)).to.deep.equal(['a', 'b', 'live']);
    h.record(live, frame, 'client', true);
    // a (closed first) went; b is still within the bound.
    expect(h.connections().map((info) => info.id)).to.deep.equal(['b', 'live']);
    h.record(live, frame, 'client', true);
    h.record(live, frame, 'client', true);
    expect(h.connections().map((info) => info.id)).to.deep.equal(['live']);
    h.record(live, frame, 'client', true);
    expect(h.bytes).to.equal(5 * entry);
    expect(seqs(live)).to.deep.equal([3, 4, 5, 6, 7]);
  });

  it('keeps at most maxClosedConnections closed connections', () => {
    const h = hub({ maxClosedConnections: 2 });
    const all = ['a', 'b', 'c', 'd'].map((id) => conn(h, id));
    for (const c of all) h.close(c, undefined);
    expect(h.connections().map((info) => info.id)).to.deep.equal(['c', 'd']);
    expect(h.get('a')).to.equal(undefined);
  });

  it('fills the close codes the stages did not see from the summary, 1005 for a close without code', () => {
    const h = hub();
    const c = conn(h, 'a');
    h.record(c, closeFrame(4000, 'x'), 'client', false);
    c.noteClose('client', 4000);
    h.close(c, {
      closedBy: 'client', error: undefined,
      client: { closeReceived: { code: 4000, reason: 'x' }, closeSent: { code: 4000, reason: 'x' }, frames: 1, bytes: 1, aborted: false },
      upstream: { closeReceived: undefined, closeSent: { code: undefined, reason: '' }, frames: 0, bytes: 0, aborted: false },
    });
    expect(h.get('a')!.info().closeCodes).to.deep.equal({ client: 4000, upstream: 4000 });
    const d = conn(h, 'd');
    h.close(d, {
      closedBy: 'proxy', error: undefined,
      client: { closeReceived: undefined, closeSent: { code: undefined, reason: '' }, frames: 0, bytes: 0, aborted: false },
      upstream: { closeReceived: undefined, closeSent: undefined, frames: 0, bytes: 0, aborted: true },
    });
    expect(h.get('d')!.info().closeCodes).to.deep.equal({ client: 1005, upstream: null });
  });

  it('holds its bounds under a flood through a real proxy', async () => {
    const maxBytes = 256 * 1024;
    const { port, client, insp } = await inspectRig({ maxMessagesPerConnection: 200, maxBytes, maxPayloadBytes: 4096 });
    const peers = await Promise.all([client(), client(), client()]);
    const big = Buffer.alloc(3000, 7);
    for (let i = 0; i < 400; i++) for (const peer of peers) peer.ws.send(i % 2 === 0 ? big : `message ${i}`);
    await Promise.all(peers.map((peer) => peer.waitMessages(400)));
    const list = (await call(port, 'GET', '/api/connections')).json;
    expect(list).to.have.length(3);
    for (const info of list) expect(info.fromClient.frames).to.equal(400);
    expect(insp.hub.bytes).to.be.at.most(maxBytes);
    for (const info of list) {
      const rows = (await call(port, 'GET', `/api/connections/${info.id}/messages?limit=1000`)).json;
      expect(rows.length).to.be.at.most(200);
      expect(rows[rows.length - 1].seq).to.equal(800);
      // Consecutive numbers: only the oldest went.
      expect(rows[rows.length - 1].seq - rows[0].seq).to.equal(rows.length - 1);
    }
  });
});
