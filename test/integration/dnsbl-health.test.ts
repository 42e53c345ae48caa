/**
 * shield.dnsbl through a real Haraka (issue 12): zone health probes that time out change nothing,
 * probes ask the zone and not the resolver's cache (a repaired zone is enabled at the next probe),
 * and a sender domain too long to ask with the zone appended is a skip at once, not a timeout.
 */
import assert from 'node:assert/strict';
import { useHaraka } from '../helpers/env';
import { SmtpClient, nextSource } from '../helpers/smtp';

const PLUGINS = ['shield.relay', 'shield.dnsbl', 'test.capture', 'queue/discard'];
const INI = `[main]
zones = flaky, fixed, dl
threshold = 1
health_interval = 1s
health_failures = 2

[flaky]
zone = flaky.example.net

[fixed]
zone = fixed.example.net

[dl]
type = domain
zone = dl.example.net
registered_domain = false
check = mail_from
test_listed =
test_unlisted =
`;

describe('shield.dnsbl zone health and names that cannot be asked (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({
    plugins: PLUGINS,
    zones: {
      // test points that never answer: every probe of this zone times out
      '2.0.0.127.flaky.example.net': { drop: true },
      '1.0.0.127.flaky.example.net': { drop: true },
      // a zone that lists everything, with a long TTL, until the test repairs it
      '2.0.0.127.fixed.example.net': { A: ['127.0.0.2'], ttl: 300 },
      '1.0.0.127.fixed.example.net': { A: ['127.0.0.2'], ttl: 300 },
    },
    files: { 'shield.relay.ini': '[main]\ndomains = example.com\n', 'shield.dnsbl.ini': INI },
  });

  it('a zone whose probes time out stays in use; a repaired zone is enabled at the next probe despite its TTL of 300', async () => {
    await env.haraka.waitFor(/dnsbl zone fixed disabled: it lists the test point 127\.0\.0\.1/);
    await env.haraka.waitFor(/dnsbl zone flaky: health probe unanswered \(127\.0\.0\.2: timed out; 127\.0\.0\.1: timed out\); the zone stays in use/);
    env.dns.zones.delete('1.0.0.127.fixed.example.net');
    await env.haraka.waitFor(/dnsbl zone fixed enabled again/, 5000);
    assert.doesNotMatch(env.haraka.output, /dnsbl zone flaky disabled/);
  });

  it('a sender domain too long to ask with the zone appended: skip:not_asked at once, no query, no wait', async () => {
    const domain = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(50)}.example.org`;
    const c = await SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.61.1' });
    try {
      await c.cmd('EHLO client.example.org');
      await c.cmd(`MAIL FROM:<a@${domain}>`);
      const t0 = Date.now();
      const r = await c.cmd('RCPT TO:<b@example.com>');
      assert.equal(r.code, 250, r.text);
      assert.ok(Date.now() - t0 < 400, `RCPT took ${Date.now() - t0} ms (the DNS timeout is 500 ms x 2 tries)`);
    } finally {
      await c.quit();
    }
    await env.haraka.waitFor(/shield summary ip=198\.18\.61\.1 .*dnsbl=.*skip:not_asked/);
    assert.equal(env.dns.queries.filter((q) => q.name.endsWith('.dl.example.net')).length, 0);
  });
});
