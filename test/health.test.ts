import t from 'tap';
import { bootDaemon, tcpRequest } from './helpers/daemon.js';

t.test('GET /health answers over the socket and over TCP without a token', async (t) => {
  const d = await bootDaemon();
  t.teardown(() => d.close());
  const viaSocket = await d.client.call<{ status: string; plugins: Array<{ name: string }> }>('GET', '/health');
  t.equal(viaSocket.status, 'ok');
  t.same(viaSocket.plugins.map((p) => p.name), ['stats']);
  const viaTcp = await tcpRequest(d.url, '/health', { headers: { host: `127.0.0.1:${d.port}` } });
  t.equal(viaTcp.status, 200);
  t.equal(viaTcp.json.success, true);
  t.equal(viaTcp.headers['x-request-id'], viaTcp.json.request_id);
});
