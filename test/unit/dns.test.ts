/** The suite's resolver against the project's DNS fixture server (never a real DNS server). */
import assert from 'node:assert/strict';
import { Resolver, reverseName } from '../../plugins/shield/core/dns';
import { DnsError } from '../../plugins/shield/core/errors';
import { DnsFixture } from '../helpers/dns-server';

describe('dns resolver', function () {
  this.timeout(10000);
  let dns: DnsFixture;
  let now = 1_000_000;
  const clock = () => now;
  const make = (over: Partial<ConstructorParameters<typeof Resolver>[0]> = {}) =>
    new Resolver({ nameservers: [dns.address], timeoutMs: 200, tries: 2, cacheSize: 100, minTtl: 0, maxTtl: 3600, negativeTtl: 30, now: clock, ...over });

  before(async () => {
    dns = await DnsFixture.start({
      'mail.example.com': { A: ['192.0.2.10', '192.0.2.11'], AAAA: ['2001:db8::10'], ttl: 120 },
      'example.com': { MX: [{ exchange: 'mail.example.com', priority: 10 }], TXT: ['v=spf1 -all'], ttl: 300 },
      'www.example.com': { CNAME: 'mail.example.com', ttl: 60 },
      '10.2.0.192.in-addr.arpa': { PTR: ['mail.example.com.'] },
      'broken.example.com': { rcode: 'SERVFAIL' },
      'refused.example.com': { rcode: 'REFUSED' },
      'slow.example.com': { drop: true },
      'long.example.com': { TXT: ['a'.repeat(200) + 'b'.repeat(100)] },
    });
  });
  after(() => dns.close());
  beforeEach(() => {
    dns.queries = [];
    now = 1_000_000;
  });

  it('answers A, AAAA, MX, TXT, PTR and follows CNAME answers', async () => {
    const r = make();
    assert.deepEqual((await r.query('mail.example.com', 'A')).records, ['192.0.2.10', '192.0.2.11']);
    assert.deepEqual((await r.query('mail.example.com', 'AAAA')).records, ['2001:db8::10']);
    assert.deepEqual((await r.query('example.com', 'MX')).records, [{ exchange: 'mail.example.com', priority: 10 }]);
    assert.deepEqual((await r.query('example.com', 'TXT')).records, ['v=spf1 -all']);
    assert.deepEqual((await r.query('long.example.com', 'TXT')).records, ['a'.repeat(200) + 'b'.repeat(100)]);
    assert.deepEqual((await r.reverse('192.0.2.10')).records, ['mail.example.com']);
    const w = await r.query('WWW.Example.COM.', 'A');
    assert.deepEqual(w.records, ['192.0.2.10', '192.0.2.11']);
    assert.equal(w.ttl, 60, 'the lowest TTL in the chain');
  });

  it('caches answers for their TTL, then asks again', async () => {
    const r = make();
    const a = await r.query('mail.example.com', 'A');
    assert.equal(a.ttl, 120);
    assert.equal(a.fromCache, false);
    now += 119_000;
    const b = await r.query('mail.example.com', 'A');
    assert.equal(b.fromCache, true);
    assert.equal(b.ttl, 1);
    assert.equal(dns.countFor('mail.example.com', 'A'), 1);
    now += 2_000;
    assert.equal((await r.query('mail.example.com', 'A')).fromCache, false);
    assert.equal(dns.countFor('mail.example.com', 'A'), 2);
  });

  it('caches negative answers for the SOA minimum (RFC 2308) and tells NXDOMAIN from NODATA', async () => {
    const r = make();
    const nx = await r.query('nothing.example.com', 'A');
    assert.equal(nx.status, 'nxdomain');
    assert.equal(nx.ttl, 60);
    const nodata = await r.query('mail.example.com', 'MX');
    assert.equal(nodata.status, 'nodata');
    now += 59_000;
    assert.equal((await r.query('nothing.example.com', 'A')).fromCache, true);
    assert.equal(dns.countFor('nothing.example.com'), 1);
  });

  it('clamps TTLs to min_ttl / max_ttl', async () => {
    const r = make({ minTtl: 600, maxTtl: 900 });
    assert.equal((await r.query('mail.example.com', 'A')).ttl, 600);
    assert.equal((await r.query('nothing.example.com', 'A')).ttl, 600);
    const r2 = make({ maxTtl: 10 });
    assert.equal((await r2.query('example.com', 'MX')).ttl, 10);
  });

  it('classifies SERVFAIL, REFUSED and timeouts as errors, retries them, and never caches them', async () => {
    const r = make();
    await assert.rejects(r.query('broken.example.com', 'A'), (e: unknown) => e instanceof DnsError && e.code === 'DNS_SERVFAIL');
    await assert.rejects(r.query('refused.example.com', 'A'), (e: unknown) => e instanceof DnsError && e.code === 'DNS_REFUSED');
    const t0 = Date.now();
    await assert.rejects(r.query('slow.example.com', 'A'), (e: unknown) => e instanceof DnsError && e.code === 'DNS_TIMEOUT');
    const took = Date.now() - t0;
    assert.ok(took >= 380 && took < 1500, `2 tries x 200 ms, took ${took}`);
    assert.equal(dns.countFor('broken.example.com'), 2, 'tried twice');
    await assert.rejects(r.query('broken.example.com', 'A'));
    assert.equal(dns.countFor('broken.example.com'), 4, 'errors are not cached');
  });

  it('collapses identical concurrent queries into one packet', async () => {
    const r = make();
    const all = await Promise.all(Array.from({ length: 10 }, () => r.query('example.com', 'TXT')));
    assert.ok(all.every((a) => a.records[0] === 'v=spf1 -all'));
    assert.equal(dns.countFor('example.com', 'TXT'), 1);
  });

  it('fails over to the next nameserver when one does not answer', async () => {
    const r = make({ nameservers: ['127.0.0.1:9', dns.address] });
    assert.deepEqual((await r.query('mail.example.com', 'A')).records, ['192.0.2.10', '192.0.2.11']);
  });

  it('builds in-addr.arpa and ip6.arpa names', () => {
    assert.equal(reverseName('192.0.2.10'), '10.2.0.192.in-addr.arpa');
    assert.equal(reverseName('::ffff:192.0.2.10'), '10.2.0.192.in-addr.arpa');
    assert.equal(reverseName('2001:db8::1'), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
  });
});
