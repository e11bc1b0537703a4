import { expect } from 'chai';
import { INSPECTOR_DEFAULTS, isLoopback, resolveInspectorOptions } from '../../src/inspector/options.js';

describe('inspector/options', () => {
  it('applies the defaults', () => {
    const resolved = resolveInspectorOptions(undefined, '/page');
    expect(resolved).to.include({ port: 0, host: '127.0.0.1', token: undefined, pageDir: '/page', ...INSPECTOR_DEFAULTS });
    expect(INSPECTOR_DEFAULTS).to.include({ maxMessagesPerConnection: 1000, maxBytes: 64 * 1024 * 1024, maxClosedConnections: 100, maxPayloadBytes: 65536, maxPageBuffer: 1048576, holdTimeout: 30_000 });
  });

  it('tells loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) expect(isLoopback(host), host).to.equal(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.com', '::ffff:10.0.0.1', '127.0.0.1.example.com']) expect(isLoopback(host), host).to.equal(false);
  });

  it('requires a token for any other host, and checks every option by name', () => {
    expect(() => resolveInspectorOptions({ host: '0.0.0.0' }, '/p')).to.throw(TypeError, 'options.token is required to bind "0.0.0.0"');
    expect(resolveInspectorOptions({ host: '0.0.0.0', token: 'x' }, '/p').host).to.equal('0.0.0.0');
    for (const [options, message] of [
      [{ maxMessagesPerConnection: 0 }, 'options.maxMessagesPerConnection must be an integer >= 1'],
      [{ maxBytesPerConnection: 10 }, 'options.maxBytesPerConnection must be an integer >= 1024'],
      [{ maxPageBuffer: 1.5 }, 'options.maxPageBuffer must be'],
      [{ maxClosedConnections: -1 }, 'options.maxClosedConnections must be'],
      [{ holdTimeout: 2 ** 31 }, 'options.holdTimeout must be an integer >= 1 and <='],
      [{ host: '' }, 'options.host must be'],
      [{ pageDir: 3 }, 'options.pageDir must be'],
      [{ port: -1 }, 'options.port must be'],
    ] as const) {
      expect(() => resolveInspectorOptions(options as never, '/p'), JSON.stringify(options)).to.throw(TypeError, message);
    }
  });
});
