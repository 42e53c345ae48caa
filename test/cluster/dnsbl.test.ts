/**
 * Two Haraka nodes, one Redis: what one node learned from the DNS lists (answers, zone health) the
 * other uses without asking again.
 */
import assert from 'node:assert/strict';
import { useHaraka } from '../helpers/env';
import type { HarakaProcess } from '../helpers/haraka';
import { nextSource, session } from '../helpers/smtp';
import { DNSBL_INI, dnsblZones } from '../helpers/dnsbl-zones';

const PLUGINS = ['shield.relay', 'shield.dnsbl', 'queue/discard'];

describe('shield.dnsbl cluster: two nodes, one Redis', function () {
  this.timeout(40000);
  const env = useHaraka({
    plugins: PLUGINS,
    nodes: 2,
    waitForRedis: true,
    zones: dnsblZones(),
    files: { 'shield.relay.ini': '[main]\ndomains = example.com\n', 'shield.dnsbl.ini': DNSBL_INI.replace('health_interval = 1s', 'health_interval = 4s') },
  });
  let a: HarakaProcess;
  let b: HarakaProcess;
  before(() => ([a, b] = env.nodes as [HarakaProcess, HarakaProcess]));

  it('one node probes the zones per interval, and both apply the verdict', async () => {
    await Promise.all([a.waitFor(/dnsbl zone everything disabled/, 10000), b.waitFor(/dnsbl zone everything disabled/, 10000)]);
    assert.equal(env.dns.countFor('1.0.0.127.everything.example.net'), 1, 'one probe for the fleet, not one per node');
  });

  it('an answer one node fetched is used by the other from the shared cache', async () => {
    const ra = await session({ port: a.port, localAddress: nextSource(), proxyFrom: '198.18.60.2', from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.match(ra.rcpts[0]?.text ?? '', /^550 5\.7\.1 Rejected: 198\.18\.60\.2 is listed by bl/);
    const asked = env.dns.countFor('2.60.18.198.bl.example.net');
    assert.equal(asked, 1);
    const rb = await session({ port: b.port, localAddress: nextSource(), proxyFrom: '198.18.60.2', from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.match(rb.rcpts[0]?.text ?? '', /^550 5\.7\.1 Rejected: 198\.18\.60\.2 is listed by bl/);
    assert.equal(env.dns.countFor('2.60.18.198.bl.example.net'), asked, 'node B did not ask DNS');
  });
});
