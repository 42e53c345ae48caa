/**
 * shield.relay through a real Haraka and a real SMTP client. Clients connect from distinct
 * 127.0.0.x addresses and announce public-looking addresses (198.18.0.0/15, 2001:2::/48) with the
 * PROXY protocol, since Haraka exempts loopback clients from much of its logic.
 */
import assert from 'node:assert/strict';
import { DnsFixture } from '../helpers/dns-server';
import { startHaraka, type HarakaProcess } from '../helpers/haraka';
import { PrivateRedis } from '../helpers/redis-server';
import { SmtpClient, assertReply, nextSource, session } from '../helpers/smtp';

const RELAY_INI = `[main]
networks = 198.18.10.0/24, 2001:2:0:10::/64, 198.18.20.7
domains = example.com, bücher.example
domains_file = shield.relay.domains
`;
const PLUGINS = ['test.auth', 'shield.relay', 'queue/discard'];
const MESSAGE = 'From: a@example.org\nTo: b@example.com\nSubject: test\n\nhello\n';

describe('shield.relay (integration)', function () {
  this.timeout(30000);
  let dns: DnsFixture;
  let haraka: HarakaProcess;

  before(async () => {
    dns = await DnsFixture.start({ '1.0.0.18.198.in-addr.arpa': { PTR: ['mail.example.org'] } });
    haraka = await startHaraka({ plugins: PLUGINS, dns: dns.address, files: { 'shield.relay.ini': RELAY_INI, 'shield.relay.domains': '# more\nexample.net\n' } });
  });
  after(async () => {
    await haraka?.stop();
    await dns?.close();
  });

  const conn = (proxyFrom: string) => ({ port: haraka.port, localAddress: nextSource(), proxyFrom });

  it('accepts a message for a local domain from a public client', async () => {
    const r = await session({ ...conn('198.18.0.1'), from: 'a@example.org', rcpts: ['b@example.com', 'c@example.net'], message: MESSAGE });
    assert.equal(r.greeting.code, 220);
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    assert.equal(r.rcpts[1]?.code, 250, r.rcpts[1]?.text);
    assert.equal(r.data?.code, 250, r.data?.text);
  });

  it('refuses relay from a public client with 550 5.7.1 naming the domain', async () => {
    const r = await session({ ...conn('198.18.0.2'), from: 'a@example.org', rcpts: ['victim@other.example'] });
    assertReply(r.rcpts[0]!, 550, '5.7.1', 'relay');
    assert.match(r.rcpts[0]!.text, /other\.example is not a domain this server accepts mail for/);
  });

  it('lets relay networks relay (IPv4 CIDR, single IPv4 host, IPv6 CIDR)', async () => {
    for (const ip of ['198.18.10.44', '198.18.20.7', '2001:2:0:10::99']) {
      const r = await session({ ...conn(ip), from: 'a@example.org', rcpts: ['someone@other.example'], message: MESSAGE });
      assert.equal(r.rcpts[0]?.code, 250, `${ip}: ${r.rcpts[0]?.text}`);
      assert.equal(r.data?.code, 250, `${ip}: ${r.data?.text}`);
    }
  });

  it('an IPv4-mapped IPv6 client (::ffff:a.b.c.d) is the IPv4 client: relays inside networks, refused outside', async () => {
    const inside = await session({ ...conn('::ffff:198.18.10.45'), from: 'a@example.org', rcpts: ['someone@other.example'], message: MESSAGE });
    assert.equal(inside.rcpts[0]?.code, 250, inside.rcpts[0]?.text);
    assert.equal(inside.data?.code, 250);
    const outside = await session({ ...conn('::ffff:198.18.0.20'), from: 'a@example.org', rcpts: ['someone@other.example', 'b@example.com'] });
    assertReply(outside.rcpts[0]!, 550, '5.7.1', 'mapped address outside the relay networks');
    assert.equal(outside.rcpts[1]?.code, 250, 'local mail still accepted');
  });

  it('a bare IP in networks is one host, never its neighbours; IPv6 outside the /64 is refused', async () => {
    for (const ip of ['198.18.20.8', '198.18.20.6', '2001:2:0:11::1', '2001:2::1']) {
      const r = await session({ ...conn(ip), from: 'a@example.org', rcpts: ['someone@other.example'] });
      assertReply(r.rcpts[0]!, 550, '5.7.1', ip);
    }
  });

  it('lets authenticated users relay, and only after a successful AUTH', async () => {
    const ok = await session({ ...conn('198.18.0.3'), auth: ['alice', 'wonderland'], from: 'alice@example.com', rcpts: ['friend@other.example'], message: MESSAGE });
    assert.equal(ok.auth?.code, 235, ok.auth?.text);
    assert.equal(ok.rcpts[0]?.code, 250, ok.rcpts[0]?.text);
    assert.equal(ok.data?.code, 250, ok.data?.text);

    const bad = await session({ ...conn('198.18.0.3'), auth: ['alice', 'guess'], from: 'alice@example.com', rcpts: ['friend@other.example'] });
    assert.equal(bad.auth?.code, 535, bad.auth?.text);
    assertReply(bad.rcpts[0]!, 550, '5.7.1', 'after failed AUTH');
  });

  it('never carries relay permission over to the next connection or client', async () => {
    // AUTH on one connection, none on the next one from the same client
    const a = await session({ ...conn('198.18.0.4'), auth: ['alice', 'wonderland'], from: 'alice@example.com', rcpts: ['x@other.example'] });
    assert.equal(a.rcpts[0]?.code, 250);
    const b = await session({ ...conn('198.18.0.4'), from: 'alice@example.com', rcpts: ['x@other.example'] });
    assertReply(b.rcpts[0]!, 550, '5.7.1', 'next connection');
    // a relay-network client, then a public one through the same source socket address
    const local = nextSource();
    const c = await session({ port: haraka.port, localAddress: local, proxyFrom: '198.18.10.5', from: 'a@example.org', rcpts: ['x@other.example'] });
    assert.equal(c.rcpts[0]?.code, 250);
    const d = await session({ port: haraka.port, localAddress: local, proxyFrom: '198.18.0.5', from: 'a@example.org', rcpts: ['x@other.example'] });
    assertReply(d.rcpts[0]!, 550, '5.7.1', 'public client after relay client');
  });

  it('keeps relay decisions per transaction: RSET and a new MAIL do not change them', async () => {
    const c = await SmtpClient.connect(conn('198.18.0.6'));
    try {
      await c.cmd('EHLO client.example.org');
      assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
      assert.equal((await c.cmd('RCPT TO:<b@example.com>')).code, 250);
      await c.cmd('RSET');
      assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
      assertReply(await c.cmd('RCPT TO:<b@other.example>'), 550, '5.7.1', 'second transaction');
    } finally {
      await c.quit();
    }
  });

  describe('routing tricks from a client that may not relay', () => {
    const refused: Array<[string, string]> = [
      ['<user%other.example@example.com>', 'percent hack'],
      ['<other.example!user@example.com>', 'bang path'],
      ['<@example.com:user@other.example>', 'source route'],
      ['<@example.com,@example.net:user@other.example>', 'source route with two hops'],
      ['<"user@other.example"@example.com>', 'quoted @'],
      ['<"user%other.example"@example.com>', 'quoted %'],
      ['<"other.example!user"@example.com>', 'quoted !'],
      ['<user@[192.0.2.1]>', 'IPv4 address literal'],
      ['<user@[IPv6:2001:db8::1]>', 'IPv6 address literal'],
      ['<user@OTHER.EXAMPLE>', 'upper-case foreign domain'],
      ['<user@example.com.other.example>', 'local domain as a prefix'],
      ['<user@notexample.com>', 'local domain as a suffix'],
      ['<user@sub.example.com>', 'subdomain (accept_subdomains is off)'],
      ['<user@bücher-other.example>', 'IDN foreign domain'],
    ];
    for (const [rcpt, what] of refused) {
      it(`${what}: ${rcpt} -> 550 5.7.1`, async () => {
        const r = await session({ ...conn('198.18.0.7'), from: 'a@example.org', rcpts: [rcpt] });
        assertReply(r.rcpts[0]!, 550, '5.7.1', what);
      });
    }

    it('unqualified recipients are refused (by the SMTP parser, 501), except <postmaster>', async () => {
      const r = await session({ ...conn('198.18.0.8'), from: 'a@example.org', rcpts: ['<user>', '<postmaster>', '<PostMaster>'] });
      assert.equal(r.rcpts[0]?.code, 501, r.rcpts[0]?.text);
      assert.equal(r.rcpts[1]?.code, 250, r.rcpts[1]?.text);
      assert.equal(r.rcpts[2]?.code, 250, r.rcpts[2]?.text);
    });

    it('malformed domains (trailing dot, double @) are refused by the SMTP parser with 501', async () => {
      const r = await session({ ...conn('198.18.0.9'), from: 'a@example.org', rcpts: ['<user@example.com.>', '<user@other.example.>', '<user@example.com@other.example>'] });
      for (const x of r.rcpts) assert.equal(x.code, 501, x.text);
    });

    it('normalises case, IDN U-labels and punycode to the same local domain', async () => {
      const r = await session({ ...conn('198.18.0.10'), from: 'a@example.org', rcpts: ['<User@Example.COM>', '<user@bücher.example>', '<user@xn--bcher-kva.example>', '<user@EXAMPLE.NET>'] });
      for (const x of r.rcpts) assert.equal(x.code, 250, x.text);
    });

    it('a relay client may use any address form (it is trusted to route)', async () => {
      const r = await session({ ...conn('198.18.10.9'), from: 'a@example.org', rcpts: ['<user%other.example@example.com>', '<user@[192.0.2.1]>'] });
      for (const x of r.rcpts) assert.equal(x.code, 250, x.text);
    });
  });
});

describe('shield.relay defer_unauth (integration)', function () {
  this.timeout(30000);
  let haraka: HarakaProcess;
  before(async () => {
    haraka = await startHaraka({ plugins: PLUGINS, files: { 'shield.relay.ini': '[main]\ndomains = example.com\ndefer_unauth = true\n' } });
  });
  after(async () => haraka?.stop());

  it('answers relay refusals with 450 4.7.1 and still accepts local mail', async () => {
    const r = await session({ port: haraka.port, localAddress: nextSource(), proxyFrom: '198.18.1.1', from: 'a@example.org', rcpts: ['x@other.example', '<x%y@example.com>', 'ok@example.com'] });
    assertReply(r.rcpts[0]!, 450, '4.7.1', 'deferred relay');
    assertReply(r.rcpts[1]!, 450, '4.7.1', 'deferred routing');
    assert.equal(r.rcpts[2]?.code, 250);
  });
});

describe('shield.relay accept_local = false (integration)', function () {
  this.timeout(30000);
  let haraka: HarakaProcess;
  before(async () => {
    // test.rcpt stands for the operator's recipient validation: it accepts known@ and nobody else
    haraka = await startHaraka({ plugins: ['shield.relay', 'test.rcpt', 'queue/discard'], files: { 'shield.relay.ini': '[main]\ndomains = example.com\naccept_local = false\n' } });
  });
  after(async () => haraka?.stop());

  it('does not accept a local recipient by itself: only what the other plugin validates gets 250', async () => {
    const r = await session({ port: haraka.port, localAddress: nextSource(), proxyFrom: '198.18.2.1', from: 'a@example.org', rcpts: ['known@example.com', 'nosuchuser@example.com', 'Known@other.example'], message: MESSAGE });
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    // nobody accepted it: Haraka's own refusal, never shield.relay's 250
    assert.equal(r.rcpts[1]?.code, 550, r.rcpts[1]?.text);
    assert.match(r.rcpts[1]!.text, /I cannot deliver mail for <nosuchuser@example\.com>/);
    // the other plugin's OK never opens relay: shield.relay refuses first
    assertReply(r.rcpts[2]!, 550, '5.7.1', 'relay through a plugin that accepts any domain');
    assert.equal(r.data?.code, 250);
  });
});

describe('shield.relay with Redis failing (integration)', function () {
  this.timeout(40000);

  it('starts without Redis (one warning line) and keeps deciding correctly', async () => {
    const dead = await PrivateRedis.start();
    const port = dead.port;
    await dead.stop();
    const h = await startHaraka({ plugins: PLUGINS, redisPort: port, files: { 'shield.relay.ini': '[main]\ndomains = example.com\n' } });
    try {
      await h.waitFor(/shared store: Redis at redis:\/\/127\.0\.0\.1:\d+ unavailable/);
      const r = await session({ port: h.port, localAddress: nextSource(), proxyFrom: '198.18.2.1', from: 'a@example.org', rcpts: ['x@other.example', 'ok@example.com'], message: MESSAGE });
      assertReply(r.rcpts[0]!, 550, '5.7.1', 'relay without Redis');
      assert.equal(r.rcpts[1]?.code, 250);
      assert.equal(r.data?.code, 250);
      assert.equal((h.output.match(/shared store: Redis .* unavailable/g) ?? []).length, 1, 'one warning line');
    } finally {
      await h.stop();
    }
  });

  it('keeps working when Redis is stopped mid-run, and uses it again when it is back', async () => {
    const redis = await PrivateRedis.start();
    const h = await startHaraka({ plugins: PLUGINS, redisPort: redis.port, files: { 'shield.relay.ini': '[main]\ndomains = example.com\n' } });
    try {
      await h.waitFor(/shared store: using Redis/);
      const before = await session({ port: h.port, localAddress: nextSource(), proxyFrom: '198.18.2.2', from: 'a@example.org', rcpts: ['x@other.example', 'ok@example.com'], message: MESSAGE });
      assertReply(before.rcpts[0]!, 550, '5.7.1', 'with Redis');
      assert.equal(before.data?.code, 250);

      await redis.stop();
      await h.waitFor(/shared store: Redis .* unavailable/);
      const during = await session({ port: h.port, localAddress: nextSource(), proxyFrom: '198.18.2.3', from: 'a@example.org', rcpts: ['x@other.example', 'ok@example.com'], message: MESSAGE });
      assertReply(during.rcpts[0]!, 550, '5.7.1', 'Redis down');
      assert.equal(during.rcpts[1]?.code, 250);
      assert.equal(during.data?.code, 250);
      assert.ok(h.running, 'Haraka is still running');

      const again = await PrivateRedis.start(redis.port);
      try {
        await h.waitFor(/shared store: using Redis[^]*unavailable[^]*shared store: using Redis/, 15000);
      } finally {
        await again.stop();
      }
    } finally {
      await h.stop();
      await redis.stop();
    }
  });
});
