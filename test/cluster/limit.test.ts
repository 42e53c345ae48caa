/**
 * Two Haraka nodes, one Redis: concurrency and rate limits are one budget for the fleet, checked
 * atomically, and the leases of a node killed with SIGKILL expire within 2 x lease_refresh.
 */
import assert from 'node:assert/strict';
import { useHaraka } from '../helpers/env';
import type { HarakaProcess } from '../helpers/haraka';
import { SmtpClient, nextSource } from '../helpers/smtp';

function open(h: HarakaProcess, proxyFrom: string): Promise<SmtpClient> {
  return SmtpClient.connect({ port: h.port, localAddress: nextSource(), proxyFrom });
}

const PLUGINS = ['shield.relay', 'shield.limit', 'queue/discard'];
const LIMIT_INI = `[main]
lease_refresh = 1s

[concurrency]
conc_ip = 3

[rates]
conn_ip = 4/1m
`;

describe('shield.limit cluster: two nodes, one Redis', function () {
  this.timeout(40000);
  const env = useHaraka({ plugins: PLUGINS, nodes: 2, waitForRedis: true, files: { 'shield.limit.ini': LIMIT_INI, 'shield.limit.overrides': '198.18.51.0/24 conn_ip=off\n' } });
  let a: HarakaProcess;
  let b: HarakaProcess;
  before(() => ([a, b] = env.nodes as [HarakaProcess, HarakaProcess]));

  it('a per-IP concurrency limit of 3 admits exactly 3 of 10 simultaneous connections across both nodes', async () => {
    const conns = await Promise.all(Array.from({ length: 10 }, (_, i) => open(i % 2 ? a : b, '198.18.50.1')));
    const codes = conns.map((c) => c.greeting.code);
    assert.equal(codes.filter((c) => c === 220).length, 3, codes.join(' '));
    assert.equal(codes.filter((c) => c === 421).length, 7);
    for (const c of conns.filter((x) => x.greeting.code === 421)) assert.match(c.greeting.text, /^421 4\.7\.0 Too many connections from 198\.18\.50\.1 \(limit 3, conc_ip\)/);
    await Promise.all(conns.map((c) => c.quit()));
  });

  it('the slots of a node killed with SIGKILL come back within 2 x lease_refresh', async () => {
    const ip = '198.18.51.1';
    const onA = [await open(a, ip), await open(a, ip)];
    const onB = await open(b, ip);
    assert.deepEqual([...onA, onB].map((c) => c.greeting.code), [220, 220, 220]);
    assert.equal((await open(b, ip)).greeting.code, 421, 'full');
    await a.kill();
    const t0 = Date.now();
    let admitted = 0;
    const extra: SmtpClient[] = [];
    while (admitted < 2) {
      const c = await open(b, ip);
      if (c.greeting.code === 220) {
        admitted++;
        extra.push(c);
      } else {
        await c.quit();
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(Date.now() - t0 < 5000, 'slots did not come back');
    }
    const freedAfter = Date.now() - t0;
    assert.ok(freedAfter <= 2500, `freed after ${freedAfter} ms (lease TTL 2 s)`);
    assert.equal((await open(b, ip)).greeting.code, 421, 'and no more than the limit');
    await Promise.all([onB.quit(), ...extra.map((c) => c.quit())]);
  });
});

describe('shield.limit cluster: a rate shared by both nodes', function () {
  this.timeout(40000);
  const env = useHaraka({ plugins: PLUGINS, nodes: 2, waitForRedis: true, files: { 'shield.limit.ini': LIMIT_INI } });
  let a: HarakaProcess;
  let b: HarakaProcess;
  before(() => ([a, b] = env.nodes as [HarakaProcess, HarakaProcess]));

  it('conn_ip = 4/1m: two connections on each node use it up; the fifth is refused on either', async () => {
    for (const h of [a, b, a, b]) {
      const c = await open(h, '198.18.52.1');
      assert.equal(c.greeting.code, 220);
      await c.quit();
    }
    for (const h of [a, b]) {
      const c = await open(h, '198.18.52.1');
      assert.match(c.greeting.text, /^421 4\.7\.0 Connection rate limit exceeded for 198\.18\.52\.1 \(4 per 1m, conn_ip\)/);
    }
  });
});
