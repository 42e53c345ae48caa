/**
 * Haraka's graceful stop with the whole suite on Redis: the plugins' shutdown() closes what the
 * suite opened (the Redis connection, its timers) at once, quietly (a stop is not an outage), so
 * nothing of the suite keeps the process alive until force_shutdown_timeout.
 */
import assert from 'node:assert/strict';
import { freePort, startHaraka } from '../helpers/haraka';
import { execFileSync } from 'node:child_process';
import { session, nextSource } from '../helpers/smtp';

const suiteClients = (pid: number) => execFileSync('redis-cli', ['CLIENT', 'LIST'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`name=haraka-shield:${pid} `)).length;

describe('graceful shutdown (integration)', function () {
  this.timeout(60000);

  it('on SIGINT the suite closes its Redis connection at once and says so, without an outage warning', async () => {
    const port = await freePort();
    const haraka = await startHaraka({
      port,
      plugins: ['shield.relay', 'shield.blocklist', 'shield.limit', 'shield.rdns', 'shield.dnsbl', 'queue/discard'],
      files: {
        'smtp.ini': `listen=127.0.0.1:${port}\nnodes=0\npublic_ip=127.0.0.1\ngraceful_shutdown=true\nforce_shutdown_timeout=20\n`,
        'shield.relay.ini': '[main]\ndomains = example.com\n',
      },
    });
    const pid = haraka.child.pid as number;
    try {
      await haraka.waitFor(/shared store: using Redis/);
      const r = await session({ port, localAddress: nextSource(), proxyFrom: '198.18.3.3', helo: 'mx.example.org', from: 'a@example.org', rcpts: ['b@example.com'] });
      assert.equal(r.greeting.code, 220, 'a session ran (leases taken, lookups made)');
      assert.equal(suiteClients(pid), 1, 'one named Redis connection while running');
      haraka.child.kill('SIGINT');
      await haraka.waitFor(/shield: stopped \(store closed\)/, 3000);
      assert.equal(suiteClients(pid), 0, 'the connection is closed');
      assert.doesNotMatch(haraka.output, /shared store: Redis at .* unavailable/);
    } finally {
      await haraka.stop();
    }
  });
});
