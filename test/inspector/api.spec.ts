import { expect } from 'chai';
import { parseRecording } from '../../src/record/format.js';
import { releaseAll } from '../proxy/rig.js';
import { call, inspectRig, sse } from './helpers.js';

describe('inspector/api', () => {
  afterEach(releaseAll);

  it('sends a message to the client from the API, shown as injected', async () => {
    const { port, client } = await inspectRig();
    const peer = await client();
    const [conn] = (await call(port, 'GET', '/api/connections')).json;
    const sent = await call(port, 'POST', `/api/connections/${conn.id}/send`, { to: 'client', type: 'text', data: 'from the inspector' });
    expect(sent.status).to.equal(200);
    expect(sent.json).to.deep.equal({ ok: true });
    await peer.waitMessages(1);
    expect(peer.messages).to.deep.equal(['from the inspector']);
    const bytes = await call(port, 'POST', `/api/connections/${conn.id}/send`, { to: 'client', type: 'binary', data: 'AAEC', encoding: 'base64' });
    expect(bytes.status).to.equal(200);
    await peer.waitMessages(2);
    expect(peer.messages[1]).to.deep.equal(Buffer.from([0, 1, 2]));
    const rows = (await call(port, 'GET', `/api/connections/${conn.id}/messages`)).json;
    expect(rows[0]).to.include({ from: 'upstream', injected: true, preview: 'from the inspector' });
    // Injected frames are not counted as the side's own.
    expect((await call(port, 'GET', '/api/connections')).json[0].fromUpstream).to.deep.equal({ frames: 0, bytes: 0 });
  });


  it('refuses a bad send: 400 for bad fields, 404 for an unknown connection', async () => {
    const { port, client } = await inspectRig();
    await client();
    const [conn] = (await call(port, 'GET', '/api/connections')).json;
    expect((await call(port, 'POST', `/api/connections/${conn.id}/send`, { to: 'nowhere', type: 'text', data: 'x' })).status).to.equal(400);
    expect((await call(port, 'POST', `/api/connections/${conn.id}/send`, { to: 'client', type: 'ping', data: 'x' })).status).to.equal(400);
    const invalid = await call(port, 'POST', `/api/connections/${conn.id}/send`, { to: 'client', type: 'text', data: '/w==', encoding: 'base64' });
    expect(invalid.status).to.equal(400);
    expect(invalid.json.error).to.match(/WSP_ERR_INVALID_FRAME/);
    const missing = await call(port, 'POST', '/api/connections/nope/send', { to: 'client', type: 'text', data: 'x' });
    expect(missing.status).to.equal(404);
    expect(missing.json.error).to.be.a('string');
    expect((await call(port, 'GET', `/api/connections/${conn.id}/messages/99`)).status).to.equal(404);
    expect((await call(port, 'GET', `/api/connections/${conn.id}/messages?after=x`)).status).to.equal(400);
    const form = await call(port, 'POST', `/api/connections/${conn.id}/send`, undefined, { 'content-type': 'text/plain' });
    expect(form.status).to.equal(415);
  });


  it('closes a connection with a chosen code, and shows it closed with its codes', async () => {
    const { port, client } = await inspectRig();
    const page = await sse(port);
    const peer = await client();
    const opened = await page.next('open');
    expect((await call(port, 'POST', `/api/connections/${opened.id}/close`, { code: 1000 + 8000 })).status).to.equal(400);
    const closed = await call(port, 'POST', `/api/connections/${opened.id}/close`, { code: 4001, reason: 'inspected' });
    expect(closed.status).to.equal(200);
    expect(await peer.closed).to.deep.equal({ code: 4001, reason: 'inspected' });
    const info = await page.next('close');
    expect(info.id).to.equal(opened.id);
    expect(info.closed).to.be.a('number');
    expect(info.closeCodes).to.deep.equal({ client: 4001, upstream: 4001 });
    // Closed, still shown, no longer live.
    const again = await call(port, 'POST', `/api/connections/${opened.id}/close`, { code: 1000 });
    expect(again.status).to.equal(409);
    expect((await call(port, 'GET', '/api/connections')).json[0].closed).to.equal(info.closed);
  });


  it('downloads the recording as JSONL in the recording format', async () => {
    const { port, client } = await inspectRig();
    const peer = await client();
    peer.ws.send('héllo');
    peer.ws.send(Buffer.from([9, 8]));
    await peer.waitMessages(2);
    const [conn] = (await call(port, 'GET', '/api/connections')).json;
    const answer = await call(port, 'GET', `/api/connections/${conn.id}/recording.jsonl`);
    expect(answer.status).to.equal(200);
    expect(answer.headers['content-type']).to.match(/^application\/x-ndjson/);
    expect(answer.headers['content-disposition']).to.match(/^attachment; filename="connection-.*\.jsonl"$/);
    const { header, frames } = parseRecording(answer.text);
    expect(header.connection).to.equal(conn.id);
    // Each direction in order (the two directions interleave as the echo comes back).
    for (const from of ['client', 'upstream'] as const) {
      expect(frames.filter((f) => f.from === from).map((f) => [f.type, f.data, f.encoding, f.size])).to.deep.equal([
        ['text', 'héllo', 'utf8', 6],
        ['binary', 'CQg=', 'base64', 2],
      ]);
    }
  });


  it('keeps at most maxPayloadBytes of a message, cut at a character boundary and marked truncated', async () => {
    const { port, client } = await inspectRig({ maxPayloadBytes: 5 });
    const peer = await client();
    peer.ws.send('abcdé-rest');
    await peer.waitMessages(1);
    const [conn] = (await call(port, 'GET', '/api/connections')).json;
    const detail = (await call(port, 'GET', `/api/connections/${conn.id}/messages/1`)).json;
    expect(detail).to.include({ payload: 'abcd', encoding: 'utf8', truncated: true, size: 11 });
    const answer = await call(port, 'GET', `/api/connections/${conn.id}/recording.jsonl`);
    const { frames } = parseRecording(answer.text);
    expect(frames[0]).to.include({ data: 'abcd', truncated: true, size: 11 });
  });


  it('downloads the recording as HAR, with the upstream URL and Chrome\'s _webSocketMessages', async () => {
    const { port, client } = await inspectRig();
    const peer = await client('/chat');
    peer.ws.send('hi');
    await peer.waitMessages(1);
    const [conn] = (await call(port, 'GET', '/api/connections')).json;
    const answer = await call(port, 'GET', `/api/connections/${conn.id}/recording.har`);
    expect(answer.status).to.equal(200);
    expect(answer.headers['content-type']).to.match(/^application\/json/);
    expect(answer.headers['content-disposition']).to.match(/^attachment; filename="connection-.*\.har"$/);
    const [entry] = answer.json.log.entries;
    expect(entry.request.url).to.equal(conn.upstreamUrl);
    expect(entry._webSocketMessages.map((m: { type: string; data: string; opcode: number }) => [m.type, m.opcode, m.data])).to.deep.equal([
      ['send', 1, 'hi'],
      ['receive', 1, 'hi'],
    ]);
  });
});
