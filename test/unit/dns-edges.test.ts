/** The suite's resolver at its edges: nameserver syntax, the cache's bounds, rcodes, retries. Fixture DNS only. */
import assert from 'node:assert/strict';
import { Resolver, parseNameserver, reverseName } from '../../plugins/shield/core/dns';
import { DnsError } from '../../plugins/shield/core/errors';
import { parseIp, type ParsedIp } from '../../plugins/shield/core/net';
import { DnsFixture } from '../helpers/dns-server';

describe('dns: nameserver addresses', () => {
  it('ip, ip:port, [ipv6]:port, [ipv6], a bare IPv6; port 53 by default', () => {
    assert.deepEqual(parseNameserver('127.0.0.1'), { host: '127.0.0.1', port: 53 });
    assert.deepEqual(parseNameserver(' 127.0.0.1:5353 '), { host: '127.0.0.1', port: 5353 });
    assert.deepEqual(parseNameserver('[::1]:5353'), { host: '::1', port: 5353 });
    assert.deepEqual(parseNameserver('[::1]'), { host: '::1', port: 53 });
    assert.deepEqual(parseNameserver('::1'), { host: '::1', port: 53 });
    assert.deepEqual(parseNameserver('127.0.0.1:1'), { host: '127.0.0.1', port: 1 });
    assert.deepEqual(parseNameserver('127.0.0.1:65535'), { host: '127.0.0.1', port: 65535 });
  });

  it('a name or a bad port is refused, quoting what was written', () => {
    assert.throws(() => parseNameserver('ns1.example.net'), { message: '"ns1.example.net" is not a nameserver address (ip, ip:port or [ipv6]:port)' });
    assert.throws(() => parseNameserver('ns1.example.net:53'), /is not a nameserver address/);
    assert.throws(() => parseNameserver('[ns1]:53'), /is not a nameserver address/);
    assert.throws(() => parseNameserver('127.0.0.1:0'), { message: '"127.0.0.1:0": bad port' });
    assert.throws(() => parseNameserver('127.0.0.1:65536'), { message: '"127.0.0.1:65536": bad port' });
    assert.throws(() => parseNameserver('[::1]:70000'), /bad port/);
    assert.throws(() => parseNameserver('127.0.0.1:x'), /is not a nameserver address/);
  });

  it('reverse names need an address', () => {
    assert.throws(() => reverseName('mail.example.com'), { message: 'not an IP address: mail.example.com' });
    assert.equal(reverseName('[192.0.2.1]'), '1.2.0.192.in-addr.arpa');
  });
});

describe('dns: resolver edges', function () {
  this.timeout(10000);
  let dns: DnsFixture;
  let noSoa: DnsFixture;
  let now = 1_000_000;
  const clock = () => now;
  const make = (over: Partial<ConstructorParameters<typeof Resolver>[0]> = {}) =>
    new Resolver({ nameservers: [dns.address], timeoutMs: 150, tries: 2, cacheSize: 100, minTtl: 0, maxTtl: 3600, negativeTtl: 30, now: clock, ...over });

  before(async () => {
    const zones = {
      'a.example.com': { A: ['192.0.2.1'], ttl: 100 },
      'b.example.com': { A: ['192.0.2.2'], ttl: 100 },
      'c.example.com': { A: ['192.0.2.3'], ttl: 100 },
      'zero.example.com': { A: ['192.0.2.4'], ttl: 0 },
      'v6.example.com': { A: ['192.0.2.6'], AAAA: ['2001:db8::6'], ttl: 100 },
      'alias.example.com': { CNAME: 'a.example.com', ttl: 50 },
      'bad.example.com': { rcode: 'FORMERR' as const },
      'gone.example.com': { rcode: 'NXDOMAIN' as const },
      'slow.example.com': { drop: true },
    };
    dns = await DnsFixture.start(zones);
    noSoa = await DnsFixture.start(zones, { negativeTtl: null });
  });
  after(async () => {
    await dns.close();
    await noSoa.close();
  });
  beforeEach(() => {
    dns.queries = [];
    noSoa.queries = [];
    now = 1_000_000;
  });

  it('asks for the name as DNS carries it: case and the final dot do not make another cache entry', async () => {
    const r = make();
    const a = await r.query('A.Example.COM.', 'A');
    assert.deepEqual(a, { name: 'a.example.com', type: 'A', status: 'ok', records: ['192.0.2.1'], ttl: 100, fromCache: false });
    const b = await r.query('a.example.com', 'A');
    assert.equal(b.fromCache, true);
    assert.equal(b.ttl, 100);
    assert.equal(dns.countFor('a.example.com'), 1);
  });

  it('a cached answer tells the time left, rounded up to the second, and expires exactly at its TTL', async () => {
    const r = make();
    await r.query('a.example.com', 'A');
    now += 98_500;
    assert.equal((await r.query('a.example.com', 'A')).ttl, 2);
    now += 1_499;
    assert.equal((await r.query('a.example.com', 'A')).ttl, 1);
    now += 1;
    assert.equal((await r.query('a.example.com', 'A')).fromCache, false);
    assert.equal(dns.countFor('a.example.com'), 2);
  });

  it('the cache holds cacheSize answers, dropping the least recently used; 0 caches nothing; a TTL of 0 is not cached', async () => {
    const r = make({ cacheSize: 2 });
    await r.query('a.example.com', 'A');
    await r.query('b.example.com', 'A');
    await r.query('a.example.com', 'A'); // a is now the most recently used
    await r.query('c.example.com', 'A'); // evicts b
    assert.equal((await r.query('a.example.com', 'A')).fromCache, true);
    assert.equal((await r.query('b.example.com', 'A')).fromCache, false);
    assert.equal(dns.countFor('b.example.com'), 2);
    const none = make({ cacheSize: 0 });
    await none.query('c.example.com', 'A');
    assert.equal((await none.query('c.example.com', 'A')).fromCache, false);
    const r2 = make();
    assert.equal((await r2.query('zero.example.com', 'A')).ttl, 0);
    assert.equal((await r2.query('zero.example.com', 'A')).fromCache, false);
    assert.equal(dns.countFor('zero.example.com'), 2);
  });

  it('the TTL of a CNAME chain is its lowest; the records are those of the type asked', async () => {
    const r = make();
    const a = await r.query('alias.example.com', 'A');
    assert.deepEqual([a.status, a.records, a.ttl], ['ok', ['192.0.2.1'], 50]);
    const c = await r.query('alias.example.com', 'CNAME');
    assert.deepEqual([c.status, c.records], ['ok', ['a.example.com']]);
  });

  it('NXDOMAIN and NODATA are answers; without an SOA the negative TTL is the configured one', async () => {
    const r = make();
    const nx = await r.query('gone.example.com', 'A');
    assert.deepEqual(nx, { name: 'gone.example.com', type: 'A', status: 'nxdomain', records: [], ttl: 60, fromCache: false });
    const nodata = await r.query('a.example.com', 'MX');
    assert.deepEqual([nodata.status, nodata.ttl], ['nodata', 60]);
    const bare = make({ nameservers: [noSoa.address] });
    assert.equal((await bare.query('unknown.example.com', 'A')).ttl, 30);
    assert.equal((await bare.query('a.example.com', 'TXT')).ttl, 30);
    const clamped = make({ nameservers: [noSoa.address], minTtl: 45 });
    assert.equal((await clamped.query('unknown.example.com', 'A')).ttl, 45);
  });

  it('FORMERR is not retried elsewhere: a malformed question will not get better', async () => {
    const r = make({ tries: 3 });
    await assert.rejects(r.query('bad.example.com', 'A'), (e: unknown) => e instanceof DnsError && e.code === 'DNS_FORMAT' && e.message === 'DNS A bad.example.com: FORMERR');
    assert.equal(dns.countFor('bad.example.com'), 1);
  });

  it('tries 0 still asks once; a timeout names the server and the time waited', async () => {
    const r = make({ tries: 0 });
    await assert.rejects(r.query('slow.example.com', 'A'), (e: unknown) => e instanceof DnsError && e.code === 'DNS_TIMEOUT' && e.message === `DNS A slow.example.com: no answer from 127.0.0.1:${dns.port} in 150 ms`);
    assert.equal(dns.countFor('slow.example.com'), 1);
  });

  it('rotates through the nameservers, one try each', async () => {
    const r = make({ nameservers: [dns.address, noSoa.address], tries: 1 });
    await r.query('a.example.com', 'A');
    await r.query('b.example.com', 'A');
    await r.query('c.example.com', 'A');
    assert.deepEqual([dns.queries.map((q) => q.name), noSoa.queries.map((q) => q.name)], [['a.example.com', 'c.example.com'], ['b.example.com']]);
  });

  it('forward confirmation asks A for IPv4 and AAAA for IPv6, and compares canonical addresses', async () => {
    const r = make();
    assert.equal(await r.forwardConfirms('v6.example.com', parseIp('192.0.2.6') as ParsedIp), true);
    assert.equal(await r.forwardConfirms('v6.example.com', parseIp('2001:DB8:0::6') as ParsedIp), true);
    assert.equal(await r.forwardConfirms('v6.example.com', parseIp('192.0.2.7') as ParsedIp), false);
    assert.equal(await r.forwardConfirms('gone.example.com', parseIp('192.0.2.7') as ParsedIp), false);
    assert.equal(dns.countFor('v6.example.com', 'A'), 1);
    assert.equal(dns.countFor('v6.example.com', 'AAAA'), 1);
    await assert.rejects(r.forwardConfirms('slow.example.com', parseIp('192.0.2.7') as ParsedIp), (e: unknown) => e instanceof DnsError);
  });

  it('an error shared by concurrent callers is not kept: the next query asks again', async () => {
    const r = make({ tries: 1 });
    const all = await Promise.allSettled([r.query('slow.example.com', 'A'), r.query('slow.example.com', 'A')]);
    assert.deepEqual(all.map((x) => x.status), ['rejected', 'rejected']);
    assert.equal(dns.countFor('slow.example.com'), 1, 'one packet for both');
    await assert.rejects(r.query('slow.example.com', 'A'));
    assert.equal(dns.countFor('slow.example.com'), 2);
  });
});
