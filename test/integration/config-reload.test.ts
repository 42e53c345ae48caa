/**
 * Config that cannot lie, through a real Haraka with every shield plugin loaded: each file has one
 * loader, so a reload logged as "reloaded" is applied (shield.rdns once silently replaced
 * shield.relay's reload callback); a comment after a value is refused, never more policy; settings
 * that apply only at start say so.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DnsFixture } from '../helpers/dns-server';
import { until } from '../helpers/env';
import { startHaraka, type HarakaProcess } from '../helpers/haraka';
import { assertReply, nextSource, session } from '../helpers/smtp';

const ALL = ['shield.relay', 'shield.blocklist', 'shield.limit', 'shield.rdns', 'shield.dnsbl', 'queue/discard'];
const MESSAGE = 'From: a@example.org\nTo: b@example.com\nSubject: t\n\nhello\n';

describe('config reloads with the whole suite loaded (integration)', function () {
  this.timeout(60000);
  let dns: DnsFixture;
  let haraka: HarakaProcess;
  const cfg = (name: string) => path.join(haraka.dir, 'config', name);
  const conn = (proxyFrom: string) => ({ port: haraka.port, localAddress: nextSource(), proxyFrom, helo: 'mx.example.org', from: 'a@example.org' });
  const relays = async (ip: string) => (await session({ ...conn(ip), rcpts: ['someone@other.example'] })).rcpts[0]?.code === 250;

  before(async () => {
    dns = await DnsFixture.start({});
    haraka = await startHaraka({
      plugins: ALL,
      dns: dns.address,
      files: {
        'shield.relay.ini': '[main]\nnetworks = 198.18.0.0/16, 198.19.1.0/24\ndomains = example.com\n',
        'shield.relay.networks': '198.19.5.0/24\n',
        'shield.rdns.ini': '[actions]\nno_ptr = tag\nfcrdns = tag\ngeneric = tag\nhelo_mismatch = tag\n',
        'shield.limit.overrides': '',
        'shield.dnsbl.ini': '[main]\nzones =\n',
      },
    });
  });
  after(async () => {
    await haraka?.stop();
    await dns?.close();
  });

  it('removing a relay network from shield.relay.ini applies, with shield.rdns loaded (no second loader of the file)', async () => {
    assert.ok(await relays('198.18.7.7'), 'a relay client before the edit');
    fs.writeFileSync(cfg('shield.relay.ini'), '[main]\nnetworks = 198.19.1.0/24\ndomains = example.com\n');
    await until('the relay reload', async () => !(await relays('198.18.7.8')), 15000, 300);
    const r = await session({ ...conn('198.18.7.9'), rcpts: ['someone@other.example'] });
    assertReply(r.rcpts[0], 550, '5.7.1', 'no longer a relay client');
    assert.ok(await relays('198.19.1.9'), 'the network that stayed still relays');
    assert.match(haraka.output, /reloaded shield\.relay\.ini/);
  });

  it('the networks file reloads too, and its old entries stop applying', async () => {
    assert.ok(await relays('198.19.5.5'));
    fs.writeFileSync(cfg('shield.relay.networks'), '198.19.6.0/24\n');
    await until('the networks file reload', async () => await relays('198.19.6.6'), 15000, 300);
    assert.equal(await relays('198.19.5.5'), false);
  });

  it('a comment after a value is refused with file, section and key; the last good config stays', async () => {
    fs.writeFileSync(cfg('shield.relay.ini'), '[main]\nnetworks = 198.19.1.0/24 ; 198.19.80.0/28\ndomains = example.com\n');
    await haraka.waitFor(/shield\.relay\.ini \[main\] networks: "198\.19\.1\.0\/24 ; 198\.19\.80\.0\/28": a value may not contain ";" or "#".*keeping the last good shield\.relay\.ini/, 15000);
    const r = await session({ ...conn('198.19.80.1'), rcpts: ['someone@other.example'] });
    assertReply(r.rcpts[0], 550, '5.7.1', 'the comment did not become a network');
    assert.ok(await relays('198.19.1.10'), 'the last good networks still apply');
  });

  it('limit overrides reload: msg_ip=1/1h for one /32 (with conc_ip=off, the one word for disabled) applies to the next session', async () => {
    const ip = '203.0.113.50';
    const send = () => session({ ...conn(ip), rcpts: ['b@example.com'], message: MESSAGE });
    assert.equal((await send()).rcpts[0]?.code, 250);
    fs.writeFileSync(cfg('shield.limit.overrides'), `${ip}/32 msg_ip=1/1h conc_ip=off\n`);
    await until('the overrides reload', async () => (await send()).mail?.code === 451, 15000, 300);
    const r = await send();
    assertReply(r.mail, 451, '4.7.1', 'the message rate from the reloaded override');
  });

  it('a [store] change in shield.ini is logged as needing a restart, and the store keeps its settings', async () => {
    const ini = fs.readFileSync(cfg('shield.ini'), 'utf8');
    fs.writeFileSync(cfg('shield.ini'), ini.replace(/prefix = (\S+)/, 'prefix = other-prefix:'));
    await haraka.waitFor(/shield\.ini \[store\] changed to backend redis, prefix other-prefix:, timeout 250ms, retry_after 5s, max_in_flight 500: the store settings apply when Haraka restarts; until then the suite keeps backend redis, prefix shield-test:/, 15000);
  });

  it('a redis.ini change is logged as needing a restart', async () => {
    fs.appendFileSync(cfg('redis.ini'), 'db = 3\n');
    await haraka.waitFor(/config\/redis\.ini changed: it applies when Haraka restarts; until then the suite's store keeps its current Redis connection/, 15000);
    assert.equal((await session({ ...conn('203.0.113.51'), rcpts: ['b@example.com'], message: MESSAGE })).data?.code, 250, 'mail still flows');
  });
});

describe('a config error at start (integration)', function () {
  this.timeout(30000);

  it('Haraka does not start; the log has one clear line naming file, section and key, and a hint', async () => {
    let haraka: HarakaProcess | null = null;
    let failed: Error | null = null;
    try {
      haraka = await startHaraka({ plugins: ['shield.relay', 'queue/discard'], files: { 'shield.relay.ini': '[main]\nnetworks = 127.0.0.7 ; 127.0.0.80/28\n' } });
    } catch (err) {
      failed = err as Error;
    } finally {
      await haraka?.stop();
    }
    assert.ok(failed, 'Haraka must not start');
    const out = failed.message;
    assert.match(out, /shield\.relay: config error: shield\.relay\.ini \[main\] networks: "127\.0\.0\.7 ; 127\.0\.0\.80\/28": a value may not contain ";" or "#"/);
    assert.match(out, /haraka-shield check/);
    assert.doesNotMatch(out, /^\s+at /m, 'no stack trace');
  });
});
