import { expect } from 'chai';
import { type ProxySummary } from '../../src/index.js';
import { startUpstream } from '../helpers/proxy-harness.js';
import { wsClient } from '../helpers/proxy-peers.js';
import { waitFor } from '../helpers/sockets.js';
import { onCleanup, releaseAll } from '../proxy/rig.js';
import { listening } from './helpers.js';

describe('server/ProxyServer keepalive', () => {
  afterEach(releaseAll);

  it('detects an upstream that stops answering: the client is sent 1001', async () => {
    // An upstream whose socket stops being read once open: it never answers the proxy's pings.
    const upstream = await startUpstream((ws) => {
      ws.on('error', () => undefined);
      (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    }, { autoPong: false });
    onCleanup(() => upstream.close());
    const { server, url } = await listening({ target: upstream.url, pingInterval: { client: 60_000, upstream: 100 }, pongTimeout: 100 });
    const summaries: ProxySummary[] = [];
    server.on('close', (summary) => summaries.push(summary));
    const client = await wsClient(url);
    const { code } = await client.closed;
    expect(code).to.equal(1001);
    await waitFor(() => summaries.length === 1);
    expect(summaries[0]!.error?.code).to.equal('WSP_ERR_KEEPALIVE_TIMEOUT');
    expect(summaries[0]!.closedBy).to.equal('upstream');
    expect(client.events.filter((e) => e.startsWith('ping'))).to.deep.equal([]);
  });
});
