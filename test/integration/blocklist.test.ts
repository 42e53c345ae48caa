/**
 * shield.blocklist through a real Haraka, a real SMTP client (public addresses announced with the
 * PROXY protocol), the DNS fixture for rDNS, and the CLI writing to Redis.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCli, cli } from '../helpers/cli';
import { until, useHaraka } from '../helpers/env';
import { SmtpClient, assertReply, greet, nextSource, session } from '../helpers/smtp';

const PLUGINS = ['shield.relay', 'shield.blocklist', 'queue/discard'];
const RELAY_INI = '[main]\ndomains = example.com\n';
const BLOCK = `# test block list
198.18.2.0/24            snowshoe range
2001:2:0:bad::/64
dyn.example.org          dynamic pool
helo-block.example.com
Case-Block.Example.COM.   written in mixed case
rcpt:Retired@Example.COM  mixed case address
sender:bulk.example.net  bulk sender
rcpt:old@example.com     retired address
`;
const ALLOW = `198.18.2.7
ok.dyn.example.org
sender:ceo@bulk.example.net
`;
const MESSAGE = 'From: a@example.org\nTo: b@example.com\nSubject: test\n\nhello\n';

describe('shield.blocklist (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({
    plugins: PLUGINS,
    zones: {
      '30.1.18.198.in-addr.arpa': { PTR: ['host.ok.dyn.example.org'] },
      'host.ok.dyn.example.org': { A: ['198.18.1.30'] },
      '31.1.18.198.in-addr.arpa': { PTR: ['host2.ok.dyn.example.org'] },
      'host2.ok.dyn.example.org': { drop: true },
      '32.1.18.198.in-addr.arpa': { PTR: ['host3.ok.dyn.example.org'] },
      'host3.ok.dyn.example.org': { A: ['198.18.99.99'] },
      '33.1.18.198.in-addr.arpa': { PTR: ['x.dyn.example.org'] },
    },
    files: {
      'shield.relay.ini': RELAY_INI,
      'shield.blocklist.ini': '[main]\nshow_reason = true\ncontact = write to postmaster@example.com\nsync_interval = 200ms\n',
      'shield.blocklist.block': BLOCK,
      'shield.blocklist.allow': ALLOW,
    },
  });

  const conn = (proxyFrom: string) => ({ port: env.haraka.port, localAddress: nextSource(), proxyFrom });

  it('refuses a blocked IP at connect with 554 5.7.1, the reason and the contact', async () => {
    const g = await greet(env.haraka.port, '198.18.2.55');
    assertReply(g, 554, '5.7.1', 'blocked IP');
    assert.match(g.text, /your address 198\.18\.2\.55 is on this server's local blocklist \(snowshoe range\); write to postmaster@example\.com/);
  });

  it('blocks IPv6 ranges', async () => {
    assertReply(await greet(env.haraka.port, '2001:2:0:bad::9'), 554, '5.7.1', 'blocked IPv6');
    assert.equal((await greet(env.haraka.port, '2001:2:0:bae::9')).code, 220);
  });

  it('an IPv4-mapped IPv6 client matches the IPv4 entries: blocked in the range, allowed for the allow entry', async () => {
    const g = await greet(env.haraka.port, '::ffff:198.18.2.56');
    assertReply(g, 554, '5.7.1', 'mapped address in a blocked IPv4 range');
    assert.match(g.text, /198\.18\.2\.56 is on this server's local blocklist \(snowshoe range\)/);
    const ok = await session({ ...conn('::ffff:198.18.2.7'), from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.equal(ok.greeting.code, 220, ok.greeting.text);
    assert.equal(ok.rcpts[0]?.code, 250);
  });

  it('a more specific allow entry lets one host of a blocked range in, allowlisted but not a relay client', async () => {
    const r = await session({ ...conn('198.18.2.7'), from: 'a@example.org', rcpts: ['b@example.com', 'victim@other.example'], message: MESSAGE });
    assert.equal(r.greeting.code, 220, r.greeting.text);
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    assertReply(r.rcpts[1], 550, '5.7.1', 'allowlisted client relaying');
    assert.match(r.rcpts[1]!.text, /Relaying denied/);
    assert.equal(r.data?.code, 250);
    await env.haraka.waitFor(/shield summary ip=198\.18\.2\.7 .*blocklist=pass:allow_ip/);
  });

  it('refuses a client whose rDNS name is in a blocked domain', async () => {
    const g = await greet(env.haraka.port, '198.18.1.33');
    assertReply(g, 554, '5.7.1', 'blocked rDNS');
    assert.match(g.text, /your host name x\.dyn\.example\.org is on this server's local blocklist/);
  });

  it('an rDNS allow needs forward confirmation: confirmed -> accepted, forged -> 554, DNS timeout -> 421 (never 5xx)', async () => {
    const ok = await session({ ...conn('198.18.1.30'), helo: 'helo-block.example.com', from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.equal(ok.greeting.code, 220, ok.greeting.text);
    assert.equal(ok.ehlo.code, 250, 'an allowlisted client is not judged by its HELO');
    assert.equal(ok.rcpts[0]?.code, 250);
    assertReply(await greet(env.haraka.port, '198.18.1.32'), 554, '5.7.1', 'PTR that does not resolve back');
    const t0 = Date.now();
    const g = await greet(env.haraka.port, '198.18.1.31');
    assertReply(g, 421, '4.7.1', 'forward lookup timed out');
    assert.ok(Date.now() - t0 < 3000, 'bounded by the DNS timeout');
  });

  it('refuses a blocked HELO with 550 5.7.1, and a second HELO does not clear it', async () => {
    const c = await SmtpClient.connect(conn('198.18.3.1'));
    try {
      assert.equal(c.greeting.code, 220);
      assertReply(await c.cmd('EHLO helo-block.example.com'), 550, '5.7.1', 'blocked HELO');
      assertReply(await c.cmd('EHLO clean.example.com'), 550, '5.7.1', 'HELO again');
      // Haraka itself refuses MAIL without an accepted HELO
      assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 503);
    } finally {
      await c.quit();
    }
    // a clean HELO first and a blocked one after it: no way on to MAIL
    const c2 = await SmtpClient.connect(conn('198.18.3.1'));
    try {
      assert.equal((await c2.cmd('EHLO clean.example.com')).code, 250);
      assertReply(await c2.cmd('EHLO mx.helo-block.example.com'), 550, '5.7.1', 'blocked second HELO');
      assert.equal((await c2.cmd('MAIL FROM:<a@example.org>')).code, 503, 'Haraka forgets the first HELO once a later one is refused');
    } finally {
      await c2.quit();
    }
  });

  it('refuses a blocked sender domain (and subdomains) at MAIL; an allowed address in it passes', async () => {
    const bad = await session({ ...conn('198.18.3.2'), from: 'x@news.bulk.example.net', rcpts: [] });
    assertReply(bad.mail, 550, '5.7.1', 'blocked sender');
    assert.match(bad.mail.text, /Sender x@news\.bulk\.example\.net is on this server's local blocklist \(bulk sender\)/);
    const ok = await session({ ...conn('198.18.3.2'), from: 'CEO@bulk.example.net', rcpts: ['b@example.com'] });
    assert.equal(ok.mail.code, 250, ok.mail.text);
  });

  it('refuses a blocked recipient at RCPT and accepts the others', async () => {
    const r = await session({ ...conn('198.18.3.3'), from: 'a@example.org', rcpts: ['OLD@example.com', 'new@example.com'], message: MESSAGE });
    assertReply(r.rcpts[0], 550, '5.7.1', 'retired recipient');
    assert.match(r.rcpts[0]!.text, /Recipient old@example\.com is on this server's local blocklist \(retired address\)/);
    assert.equal(r.rcpts[1]?.code, 250);
    assert.equal(r.data?.code, 250);
  });

  it('entries and names compare without case and trailing dots (file entries in mixed case)', async () => {
    const c = await SmtpClient.connect(conn('198.18.3.4'));
    try {
      assertReply(await c.cmd('EHLO mx.CASE-block.example.com.'), 550, '5.7.1', 'HELO under a mixed-case entry');
    } finally {
      await c.quit();
    }
    const r = await session({ ...conn('198.18.3.5'), from: 'a@example.org', rcpts: ['retired@example.com', 'RETIRED@EXAMPLE.COM'] });
    assertReply(r.rcpts[0], 550, '5.7.1', 'recipient under a mixed-case entry');
    assertReply(r.rcpts[1], 550, '5.7.1', 'upper-case recipient');
  });

  it('applies entries added and removed with the CLI within a second, on a running node', async () => {
    const ip = '198.18.4.4';
    assert.equal((await greet(env.haraka.port, ip)).code, 220);
    await cli(['block', 'add', ip, '--reason', 'cli test', '--config', env.haraka.dir]);
    const ms = await until('the CLI block', async () => (await greet(env.haraka.port, ip)).code === 554, 3000);
    assert.ok(ms < 1500, `took ${ms} ms`);
    const list = await cli(['block', 'list', '--kind', 'ip', '--config', env.haraka.dir]);
    assert.match(list, /198\.18\.4\.4\/32 +never +cli:\S+ +cli test/);
    assert.match(list, /198\.18\.2\.0\/24 +never +shield\.blocklist\.block:2 +snowshoe range/);
    await cli(['block', 'remove', ip, '--config', env.haraka.dir]);
    await until('the CLI removal', async () => (await greet(env.haraka.port, ip)).code === 220, 3000);
  });

  it('reloads the list files live', async () => {
    const ip = '198.18.5.5';
    assert.equal((await greet(env.haraka.port, ip)).code, 220);
    fs.appendFileSync(path.join(env.haraka.dir, 'config', 'shield.blocklist.block'), `${ip}\nnot-an-entry!\n`);
    await until('the file reload', async () => (await greet(env.haraka.port, ip)).code === 554, 15000);
    await env.haraka.waitFor(/shield\.blocklist\.block line 11: "not-an-entry!" is not a host or domain name; line skipped/);
    assertReply(await greet(env.haraka.port, '198.18.2.9'), 554, '5.7.1', 'the rest of the file still applies');
  });
});

describe('shield.blocklist delay_reject (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({
    plugins: PLUGINS,
    files: {
      'shield.relay.ini': RELAY_INI,
      'shield.blocklist.ini': '[main]\ndelay_reject = true\n',
      'shield.blocklist.block': '198.18.6.0/24 secret internal note\n',
    },
  });

  it('lets a blocked client reach postmaster@ and abuse@, refuses other recipients with 550 5.7.1 at RCPT', async () => {
    const r = await session({
      port: env.haraka.port,
      localAddress: nextSource(),
      proxyFrom: '198.18.6.6',
      from: 'a@example.org',
      rcpts: ['user@example.com', 'Postmaster@example.com', 'abuse@example.com'],
      message: MESSAGE,
    });
    assert.equal(r.greeting.code, 220);
    assert.equal(r.mail.code, 250);
    assertReply(r.rcpts[0], 550, '5.7.1', 'delayed block');
    assert.match(r.rcpts[0]!.text, /your address 198\.18\.6\.6 is on this server's local blocklist$/, 'no reason unless show_reason');
    assert.equal(r.rcpts[1]?.code, 250, r.rcpts[1]?.text);
    assert.equal(r.rcpts[2]?.code, 250, r.rcpts[2]?.text);
    assert.equal(r.data?.code, 250);
  });
});

describe('shield.blocklist with Redis failing (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({
    plugins: PLUGINS,
    privateRedis: true,
    waitForRedis: true,
    files: { 'shield.relay.ini': RELAY_INI, 'shield.blocklist.ini': '[main]\nsync_interval = 200ms\n' },
  });

  it('keeps enforcing the shared entries it has when Redis dies, and mail from others still flows', async () => {
    await cli(['block', 'add', '198.18.7.7', '--config', env.haraka.dir]);
    await until('the shared block', async () => (await greet(env.haraka.port, '198.18.7.7')).code === 554);
    await env.redis!.stop();
    await env.haraka.waitFor(/shared store: Redis at .* unavailable/, 10000);
    await new Promise((r) => setTimeout(r, 500));
    assertReply(await greet(env.haraka.port, '198.18.7.7'), 554, '5.7.1', 'still blocked');
    const ok = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.7.8', from: 'a@example.org', rcpts: ['b@example.com'], message: MESSAGE });
    assert.equal(ok.data?.code, 250);
    assert.ok(env.haraka.running);
  });

  it('the CLI refuses to write when Redis is unreachable, with one line and exit 1', async () => {
    const r = await runCli(['block', 'add', '198.18.7.9', '--config', env.haraka.dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^haraka-shield: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+ .*; nothing was changed\n$/);
  });
});
