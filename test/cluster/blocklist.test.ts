/**
 * Two Haraka nodes, one Redis: an entry added with the CLI (against either node's config) blocks the
 * client on both within the sync interval (default 1 s), and its expiry lifts the block on both.
 */
import assert from 'node:assert/strict';
import { cli } from '../helpers/cli';
import { DnsFixture } from '../helpers/dns-server';
import { startHaraka, uniquePrefix, type HarakaProcess } from '../helpers/haraka';
import { SmtpClient } from '../helpers/smtp';

const PLUGINS = ['shield.relay', 'shield.blocklist', 'queue/discard'];

let src = 100;
async function greeting(h: HarakaProcess, proxyFrom: string): Promise<string> {
  src = src >= 250 ? 100 : src + 1;
  const c = await SmtpClient.connect({ port: h.port, localAddress: `127.0.0.${src}`, proxyFrom });
  await c.quit();
  return c.greeting.text;
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - t0;
}

describe('shield.blocklist cluster: two nodes, one Redis', function () {
  this.timeout(40000);
  let a: HarakaProcess;
  let b: HarakaProcess;
  let dns: DnsFixture;

  before(async () => {
    const prefix = uniquePrefix();
    // no PTR records: rDNS answers NXDOMAIN at once
    dns = await DnsFixture.start({});
    [a, b] = await Promise.all([startHaraka({ plugins: PLUGINS, prefix, dns: dns.address }), startHaraka({ plugins: PLUGINS, prefix, dns: dns.address })]);
    await Promise.all([a.waitFor(/shared store: using Redis/), b.waitFor(/shared store: using Redis/)]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await dns?.close();
  });

  it('a CLI entry with --ttl blocks the client on both nodes within a second, and its expiry frees it on both', async () => {
    const ip = '198.18.8.3';
    assert.match(await greeting(a, ip), /^220 /);
    assert.match(await greeting(b, ip), /^220 /);
    const added = Date.now();
    await cli(['block', 'add', '198.18.8.0/29', '--ttl', '4s', '--reason', 'cluster test', '--config', a.dir]);
    const [ta, tb] = await Promise.all([
      until('node A blocks', async () => /^554 5\.7\.1 /.test(await greeting(a, ip)), 3000),
      until('node B blocks', async () => /^554 5\.7\.1 /.test(await greeting(b, ip)), 3000),
    ]);
    assert.ok(Math.max(ta, tb) < 1500, `both nodes blocked after ${ta} / ${tb} ms`);
    assert.match(await greeting(b, '198.18.8.7'), /^554 5\.7\.1 Connection refused: your address 198\.18\.8\.7 /);
    assert.match(await greeting(b, '198.18.8.9'), /^220 /, 'outside the /29');
    // the entry expires 4 s after it was added, on both nodes, with no further write
    await Promise.all([
      until('node A unblocks', async () => /^220 /.test(await greeting(a, ip)), 8000),
      until('node B unblocks', async () => /^220 /.test(await greeting(b, ip)), 8000),
    ]);
    const lifted = Date.now() - added;
    assert.ok(lifted >= 3900 && lifted < 6000, `lifted ${lifted} ms after the add`);
  });

  it('an entry removed through one node\'s config is lifted on both', async () => {
    const ip = '198.18.9.9';
    await cli(['block', 'add', ip, '--config', b.dir]);
    await until('both block', async () => /^554 /.test(await greeting(a, ip)) && /^554 /.test(await greeting(b, ip)), 3000);
    await cli(['block', 'remove', ip, '--config', a.dir]);
    await until('both accept', async () => /^220 /.test(await greeting(a, ip)) && /^220 /.test(await greeting(b, ip)), 3000);
  });
});
