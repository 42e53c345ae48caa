/**
 * shield.dnsbl through a real Haraka, the DNS fixture serving the zones, and a real SMTP client.
 */
import assert from 'node:assert/strict';
import { DNSBL_INI, dnsblZones } from '../helpers/dnsbl-zones';
import { useHaraka } from '../helpers/env';
import { SmtpClient, assertReply, nextSource, session } from '../helpers/smtp';

const PLUGINS = ['test.auth', 'shield.relay', 'shield.dnsbl', 'test.capture', 'queue/discard'];
const MESSAGE = 'From: a@example.org\nTo: b@example.com\nSubject: test\n\nhello\n';

describe('shield.dnsbl (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({ plugins: PLUGINS, zones: dnsblZones(), files: { 'shield.relay.ini': '[main]\ndomains = example.com\n', 'shield.dnsbl.ini': DNSBL_INI } });
  // the first health round has disabled the zone that lists everything
  before(() => env.haraka.waitFor(/dnsbl zone everything disabled: it lists the test point 127\.0\.0\.1/));

  const conn = (proxyFrom: string) => ({ port: env.haraka.port, localAddress: nextSource(), proxyFrom });

  it('refuses a listed client at RCPT with 550 5.7.1 naming the list, the code and the lookup URL; postmaster@ still reachable', async () => {
    const r = await session({ ...conn('198.18.60.2'), from: 'a@example.org', rcpts: ['b@example.com', 'postmaster@example.com'], message: MESSAGE });
    assert.equal(r.greeting.code, 220);
    assert.equal(r.mail.code, 250);
    assertReply(r.rcpts[0], 550, '5.7.1', 'listed client');
    assert.match(r.rcpts[0]!.text, /Rejected: 198\.18\.60\.2 is listed by bl \(spam\) https:\/\/lookup\.example\.net\/\?198\.18\.60\.2/);
    assert.equal(r.rcpts[1]?.code, 250, r.rcpts[1]?.text);
    assert.equal(r.data?.code, 250);
  });

  it('an allowlist weight pulls a listed client below the threshold', async () => {
    const r = await session({ ...conn('198.18.60.3'), from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    await env.haraka.waitFor(/shield summary ip=198\.18\.60\.3 .*dnsbl=pass:below_threshold\(-1\)/);
  });

  it('a "blocked resolver" answer (127.255.255.254) is a zone error, not a listing, and is logged loudly', async () => {
    const r = await session({ ...conn('198.18.60.6'), from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    await env.haraka.waitFor(/dnsbl zone blocked: answer 127\.255\.255\.254 is an error code .*never read as listings/);
  });

  it('on a zone without listed[] patterns, 127.0.0.1, 127.255.255.0/24 and answers outside 127/8 never reject', async () => {
    for (const [client, code] of [['198.18.60.10', '127.0.0.1'], ['198.18.60.11', '127.255.255.255'], ['198.18.60.12', '192.0.2.1'], ['198.18.60.13', '127.255.255.0']] as const) {
      const r = await session({ ...conn(client), from: 'a@example.org', rcpts: ['b@example.com'] });
      assert.equal(r.rcpts[0]?.code, 250, `${client} answered ${code}: ${r.rcpts[0]?.text}`);
      await env.haraka.waitFor(new RegExp(`shield summary ip=${client.replace(/\./g, '\\.')} .*dnsbl=pass`));
    }
  });

  it('a zone that times out neither rejects nor delays the session past the DNS timeout', async () => {
    const c = await SmtpClient.connect(conn('198.18.60.5'));
    try {
      await c.cmd('EHLO client.example.org');
      await c.cmd('MAIL FROM:<a@example.org>');
      const t0 = Date.now();
      const r = await c.cmd('RCPT TO:<b@example.com>');
      assert.equal(r.code, 250, r.text);
      // [dns] timeout 500 ms, 2 tries: at most about 1 s, and it started at connect
      assert.ok(Date.now() - t0 < 1300, `RCPT took ${Date.now() - t0} ms`);
    } finally {
      await c.quit();
    }
    await env.haraka.waitFor(/dnsbl zone slow: timed out/);
  });

  it('refuses a HELO name and a sender domain listed in a domain zone', async () => {
    const helo = await session({ ...conn('198.18.61.1'), helo: 'mx.example.net', from: 'a@example.org', rcpts: ['b@example.com'] });
    assertReply(helo.rcpts[0], 550, '5.7.1', 'listed HELO domain');
    assert.match(helo.rcpts[0]!.text, /the HELO name example\.net is listed by dbl \(dbl\)/);
    const sender = await session({ ...conn('198.18.61.2'), from: 'x@news.example.net', rcpts: ['b@example.com'] });
    assertReply(sender.rcpts[0], 550, '5.7.1', 'listed sender domain');
    assert.match(sender.rcpts[0]!.text, /the sender domain example\.net is listed by dbl/);
    // the next transaction with another sender is judged again
    const c = await SmtpClient.connect(conn('198.18.61.3'));
    try {
      await c.cmd('EHLO client.example.org');
      await c.cmd('MAIL FROM:<x@example.net>');
      assertReply(await c.cmd('RCPT TO:<b@example.com>'), 550, '5.7.1', 'first transaction');
      await c.cmd('RSET');
      await c.cmd('MAIL FROM:<x@example.org>');
      assert.equal((await c.cmd('RCPT TO:<b@example.com>')).code, 250, 'second transaction, clean sender');
    } finally {
      await c.quit();
    }
  });

  it('a tag-only zone records and tags, never rejects', async () => {
    const r = await session({ ...conn('198.18.60.7'), from: 'a@example.org', rcpts: ['b@example.com'], message: MESSAGE });
    assert.equal(r.rcpts[0]?.code, 250);
    assert.equal(r.data?.code, 250);
    await env.haraka.waitFor(/shield summary ip=198\.18\.60\.7 .*tags=dnsbl\.tag/);
    // one header for the suite; a tag-only zone adds nothing to the score
    await env.haraka.waitFor(/captured X-Shield: score=0 tagged=no tags=dnsbl\.tag$/m);
  });

  it('a zone disabled by the health check is not used: its listing does not count', async () => {
    const r = await session({ ...conn('198.18.60.8'), from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    assert.equal(env.dns.countFor('8.60.18.198.everything.example.net'), 0, 'the disabled zone is not even asked');
  });

  it('IPv6 clients are looked up in nibble format', async () => {
    const r = await session({ ...conn('2001:2:0:6::1'), from: 'a@example.org', rcpts: ['b@example.com'] });
    assertReply(r.rcpts[0], 550, '5.7.1', 'listed IPv6 client');
  });

  it('an IPv4-mapped IPv6 client is looked up as IPv4 (reversed octets, not nibbles)', async () => {
    const r = await session({ ...conn('::ffff:198.18.60.2'), from: 'a@example.org', rcpts: ['b@example.com'] });
    assertReply(r.rcpts[0], 550, '5.7.1', 'listed client announced as ::ffff:');
    assert.match(r.rcpts[0]!.text, /198\.18\.60\.2 is listed by bl/);
  });

  it('authenticated users are exempt', async () => {
    const r = await session({ ...conn('198.18.60.9'), auth: ['alice', 'wonderland'], from: 'alice@example.com', rcpts: ['friend@other.example'] });
    assert.equal(r.auth?.code, 235);
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
  });

  it('answers are cached: a listed client that comes back costs no DNS query', async () => {
    const before = env.dns.countFor('2.60.18.198.bl.example.net');
    const r = await session({ ...conn('198.18.60.2'), from: 'a@example.org', rcpts: ['b@example.com'] });
    assertReply(r.rcpts[0], 550, '5.7.1', 'listed client again');
    assert.equal(env.dns.countFor('2.60.18.198.bl.example.net'), before);
  });
});

describe('shield.dnsbl enforce_at = connect (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({
    plugins: PLUGINS,
    zones: dnsblZones(),
    files: { 'shield.dnsbl.ini': DNSBL_INI.replace('threshold = 1', 'threshold = 1\nenforce_at = connect').replace('health_interval = 1s', 'health_interval = 0') },
  });

  it('refuses a listed client in the greeting with 554 5.7.1', async () => {
    const c = await SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.60.9' });
    await c.quit();
    assertReply(c.greeting, 554, '5.7.1', 'listed client at connect');
    assert.match(c.greeting.text, /198\.18\.60\.9 is listed by bl \(botnet\)/);
  });
});
