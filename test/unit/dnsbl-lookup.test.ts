import assert from 'node:assert/strict';
import { parsePattern, type Zone } from '../../plugins/shield/checks/dnsbl';
import { ZoneLookups, domainLookups, ipLookups, type Lookup, type LookupDeps, type LookupSettings } from '../../plugins/shield/checks/dnsbl-lookup';
import { DnsError } from '../../plugins/shield/core/errors';
import { parseIp, type ParsedIp } from '../../plugins/shield/core/net';

const ip = (s: string) => parseIp(s) as ParsedIp;

function zone(over: Partial<Zone> = {}): Zone {
  return {
    name: 'zen',
    type: 'ip',
    zone: 'zen.example.org',
    key: '',
    ipv4: true,
    ipv6: false,
    listed: [parsePattern('127.0.0.2 sbl 1', { label: 'x', weight: 1 })],
    errors: [],
    weight: 1,
    tagOnly: false,
    lookupUrl: '',
    identities: ['helo', 'rdns', 'mail_from'],
    registeredDomain: true,
    ...over,
  };
}

describe('dnsbl lookups: what is asked', () => {
  const v4only = zone({ name: 'v4' });
  const v6only = zone({ name: 'v6', ipv4: false, ipv6: true });
  const both = zone({ name: 'both', type: 'allow', ipv6: true });
  const dbl = zone({ name: 'dbl', type: 'domain', ipv6: true, identities: ['helo', 'rdns'] });

  it('address zones that take the client family, never domain zones; the label is the reversed address', () => {
    assert.deepEqual(ipLookups([v4only, v6only, both, dbl], ip('192.0.2.99')), [
      { zone: v4only, item: '192.0.2.99', label: '99.2.0.192', identity: 'ip' },
      { zone: both, item: '192.0.2.99', label: '99.2.0.192', identity: 'ip' },
    ]);
    const six = ipLookups([v4only, v6only, both, dbl], ip('2001:db8::1'));
    assert.deepEqual(six.map((l) => l.zone.name), ['v6', 'both']);
    assert.equal(six[0]?.item, '2001:db8::1');
    assert.equal(six[0]?.label, '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2');
    assert.deepEqual(ipLookups([dbl], ip('192.0.2.99')), []);
  });

  it('domain zones that check the identity, about the name they want; nothing for no name or an IP', () => {
    assert.deepEqual(domainLookups([v4only, dbl], 'helo', 'Mail.Example.CO.UK'), [{ zone: dbl, item: 'example.co.uk', label: 'example.co.uk', identity: 'helo' }]);
    assert.deepEqual(domainLookups([dbl], 'rdns', 'mx.example.com'), [{ zone: dbl, item: 'example.com', label: 'example.com', identity: 'rdns' }]);
    assert.deepEqual(domainLookups([dbl], 'mail_from', 'example.com'), [], 'this zone does not check the sender domain');
    assert.deepEqual(domainLookups([dbl], 'helo', null), []);
    assert.deepEqual(domainLookups([dbl], 'helo', '[192.0.2.1]'), []);
  });
});

interface Harness {
  deps: LookupDeps;
  queries: string[];
  errors: string[];
  cacheReads: string[][];
  cacheWrites: Array<Array<{ key: string; value: string; ttlSec: number }>>;
  incrs: Array<[string, number, number | undefined]>;
  settings: LookupSettings;
  disabled: Set<string>;
}

type Answer = { records: string[]; ttl: number } | Error;

function harness(answers: Record<string, Answer>, cache: Record<string, string> = {}, over: Partial<{ cacheFails: boolean; setFails: boolean; incrFails: boolean }> = {}): Harness {
  const h: Harness = {
    queries: [],
    errors: [],
    cacheReads: [],
    cacheWrites: [],
    incrs: [],
    settings: { cache_min_ttl: 60, cache_max_ttl: 3600, error_log_interval: 300 },
    disabled: new Set(),
    deps: undefined as unknown as LookupDeps,
  };
  h.deps = {
    resolver: {
      async query(name: string, type: 'A') {
        assert.equal(type, 'A');
        h.queries.push(name);
        const a = answers[name];
        if (a === undefined) throw new Error(`unexpected query ${name}`);
        if (a instanceof Error) throw a;
        return a;
      },
    },
    store: {
      async cacheGetMany(keys: string[]) {
        h.cacheReads.push(keys);
        if (over.cacheFails) throw new Error('store down');
        return keys.map((k) => cache[k] ?? null);
      },
      async cacheSetMany(entries: Array<{ key: string; value: string; ttlSec: number }>) {
        h.cacheWrites.push(entries);
        if (over.setFails) throw new Error('store down');
      },
      async incr(key: string, by: number, ttlSec?: number) {
        h.incrs.push([key, by, ttlSec]);
        if (over.incrFails) throw new Error('store down');
        return 1;
      },
    } as LookupDeps['store'],
    log: { error: (m: string) => h.errors.push(m) },
    settings: () => h.settings,
    disabled: (name: string) => h.disabled.has(name),
  };
  return h;
}

/** let the fire-and-forget store writes settle */
const tick = () => new Promise((r) => setImmediate(r));

describe('dnsbl lookups: asking the zones through the shared cache', () => {
  const zen = zone();
  const dq = zone({ name: 'zen-dq', zone: 'zen.dq.example.net', key: 'SECRETKEY' });
  const lookup = (z: Zone, item = '192.0.2.99'): Lookup => ({ zone: z, item, label: ipLookups([z], ip(item))[0]?.label as string, identity: 'ip' });

  it('asks DNS on a cache miss, classifies the answer and caches it under the zone and item (never the key)', async () => {
    const h = harness({ '99.2.0.192.zen.example.org': { records: ['127.0.0.2'], ttl: 900 }, '99.2.0.192.SECRETKEY.zen.dq.example.net': { records: [], ttl: 30 } });
    const res = await new ZoneLookups(h.deps).all([lookup(zen), lookup(dq)]);
    assert.deepEqual(h.cacheReads, [['dnsbl:a:zen.example.org:192.0.2.99', 'dnsbl:a:zen.dq.example.net:192.0.2.99']]);
    assert.deepEqual(h.queries.sort(), ['99.2.0.192.SECRETKEY.zen.dq.example.net', '99.2.0.192.zen.example.org']);
    assert.deepEqual(
      res.map((r) => ({ zone: r.zone.name, item: r.item, identity: r.identity, outcome: r.outcome })),
      [
        { zone: 'zen', item: '192.0.2.99', identity: 'ip', outcome: { status: 'listed', codes: ['127.0.0.2'], labels: ['sbl'], weight: 1 } },
        { zone: 'zen-dq', item: '192.0.2.99', identity: 'ip', outcome: { status: 'clean' } },
      ],
    );
    await tick();
    assert.equal(h.cacheWrites.length, 1, 'one write for all the answers');
    const writes = [...(h.cacheWrites[0] ?? [])].sort((a, b) => a.key.localeCompare(b.key));
    assert.deepEqual(writes, [
      { key: 'dnsbl:a:zen.dq.example.net:192.0.2.99', value: '[]', ttlSec: 60 },
      { key: 'dnsbl:a:zen.example.org:192.0.2.99', value: '["127.0.0.2"]', ttlSec: 900 },
    ]);
    assert.doesNotMatch(JSON.stringify(h.cacheWrites), /SECRETKEY/);
    assert.deepEqual(h.errors, []);
  });

  it('the cache TTL is the answer TTL clamped to cache_min_ttl..cache_max_ttl', async () => {
    const h = harness({ '99.2.0.192.zen.example.org': { records: [], ttl: 86400 } });
    await new ZoneLookups(h.deps).all([lookup(zen)]);
    await tick();
    assert.equal(h.cacheWrites[0]?.[0]?.ttlSec, 3600);
    const h2 = harness({ '99.2.0.192.zen.example.org': { records: [], ttl: 5 } });
    h2.settings = { ...h2.settings, cache_min_ttl: 120 };
    await new ZoneLookups(h2.deps).all([lookup(zen)]);
    await tick();
    assert.equal(h2.cacheWrites[0]?.[0]?.ttlSec, 120);
  });

  it('a cached answer is used without DNS and not written again', async () => {
    const h = harness({}, { 'dnsbl:a:zen.example.org:192.0.2.99': '["127.0.0.2"]' });
    const res = await new ZoneLookups(h.deps).all([lookup(zen)]);
    assert.deepEqual(h.queries, []);
    assert.deepEqual(res[0]?.outcome, { status: 'listed', codes: ['127.0.0.2'], labels: ['sbl'], weight: 1 });
    await tick();
    assert.deepEqual(h.cacheWrites, []);
    const empty = harness({}, { 'dnsbl:a:zen.example.org:192.0.2.99': '[]' });
    assert.deepEqual((await new ZoneLookups(empty.deps).all([lookup(zen)]))[0]?.outcome, { status: 'clean' }, 'a cached "not listed" is an answer too');
    assert.deepEqual(empty.queries, []);
  });

  it('a cached value that is not a list of strings is asked again', async () => {
    for (const bad of ['not json', '{"a":1}', '[2]', '["127.0.0.2",3]', '"127.0.0.2"']) {
      const h = harness({ '99.2.0.192.zen.example.org': { records: ['127.0.0.2'], ttl: 600 } }, { 'dnsbl:a:zen.example.org:192.0.2.99': bad });
      const res = await new ZoneLookups(h.deps).all([lookup(zen)]);
      assert.deepEqual(h.queries, ['99.2.0.192.zen.example.org'], bad);
      assert.equal(res[0]?.outcome.status, 'listed', bad);
    }
  });

  it('a store that cannot be read: every pair goes to DNS', async () => {
    const h = harness({ '99.2.0.192.zen.example.org': { records: ['127.0.0.2'], ttl: 600 } }, {}, { cacheFails: true });
    const res = await new ZoneLookups(h.deps).all([lookup(zen)]);
    assert.equal(res[0]?.outcome.status, 'listed');
    assert.deepEqual(h.errors, []);
  });

  it('a store that cannot be written does not matter', async () => {
    const h = harness({ '99.2.0.192.zen.example.org': { records: ['127.0.0.2'], ttl: 600 } }, {}, { setFails: true });
    const res = await new ZoneLookups(h.deps).all([lookup(zen)]);
    await tick();
    assert.equal(res[0]?.outcome.status, 'listed');
    assert.equal(h.cacheWrites.length, 1);
  });

  it('skips zones disabled by the health checks; nothing to ask, nothing read', async () => {
    const h = harness({ '99.2.0.192.SECRETKEY.zen.dq.example.net': { records: [], ttl: 600 } });
    h.disabled.add('zen');
    const res = await new ZoneLookups(h.deps).all([lookup(zen), lookup(dq)]);
    assert.deepEqual(res.map((r) => r.zone.name), ['zen-dq']);
    assert.deepEqual(h.cacheReads, [['dnsbl:a:zen.dq.example.net:192.0.2.99']]);
    h.disabled.add('zen-dq');
    assert.deepEqual(await new ZoneLookups(h.deps).all([lookup(zen), lookup(dq)]), []);
    assert.equal(h.cacheReads.length, 1, 'no store read when every zone is disabled');
    assert.deepEqual(await new ZoneLookups(h.deps).all([]), []);
  });
});

describe('dnsbl lookups: zone errors', () => {
  const zen = zone();
  const lookup: Lookup = { zone: zen, item: '192.0.2.99', label: '99.2.0.192', identity: 'ip' };
  const name = '99.2.0.192.zen.example.org';

  it('a DNS timeout is a zone error, logged without the query, counted per zone per day, never cached', async () => {
    const h = harness({ [name]: new DnsError('DNS_TIMEOUT', name, 'A', 'queryA ETIMEOUT 99.2.0.192.zen.example.org') });
    const res = await new ZoneLookups(h.deps).all([lookup]);
    assert.deepEqual(res, [{ zone: zen, item: '192.0.2.99', identity: 'ip', outcome: { status: 'error', why: 'timed out' } }]);
    assert.deepEqual(h.errors, ['dnsbl zone zen: timed out (1 error since the last report); answers like this are never read as listings']);
    assert.deepEqual(h.incrs, [['dnsbl:errors:zen', 1, 86400]]);
    await tick();
    assert.deepEqual(h.cacheWrites, []);
  });

  it('another DNS fault names its code; a fault without a code is DNS_ERROR', async () => {
    const h = harness({ [name]: new DnsError('DNS_SERVFAIL', name, 'A', 'servfail') });
    assert.deepEqual((await new ZoneLookups(h.deps).all([lookup]))[0]?.outcome, { status: 'error', why: 'lookup failed (DNS_SERVFAIL)' });
    const h2 = harness({ [name]: new Error('boom') });
    assert.deepEqual((await new ZoneLookups(h2.deps).all([lookup]))[0]?.outcome, { status: 'error', why: 'lookup failed (DNS_ERROR)' });
    assert.match(h2.errors[0] as string, /^dnsbl zone zen: lookup failed \(DNS_ERROR\) \(1 error since/);
  });

  it('an error code in the answer is a zone error too, and is cached like any answer', async () => {
    const h = harness({ [name]: { records: ['127.255.255.254'], ttl: 600 } });
    assert.deepEqual((await new ZoneLookups(h.deps).all([lookup]))[0]?.outcome, { status: 'error', why: 'answer 127.255.255.254 is an error code' });
    assert.deepEqual(h.errors, ['dnsbl zone zen: answer 127.255.255.254 is an error code (1 error since the last report); answers like this are never read as listings']);
    assert.deepEqual(h.incrs, [['dnsbl:errors:zen', 1, 86400]]);
    await tick();
    assert.equal(h.cacheWrites.length, 1);
  });

  it('logs a zone at most once per error_log_interval, then says how many errors there were', async () => {
    const h = harness({ [name]: new DnsError('DNS_TIMEOUT', name, 'A', 'timeout') });
    const realNow = Date.now;
    let now = 1_000_000_000;
    Date.now = () => now;
    try {
      const lk = new ZoneLookups(h.deps);
      await lk.all([lookup]);
      now += 1000;
      await lk.all([lookup]);
      now += 298_999;
      await lk.all([lookup]);
      assert.equal(h.errors.length, 1, 'within 300 s of the last report: not logged');
      assert.equal(h.incrs.length, 3, 'every error is counted in the store');
      now += 1; // 300 s after the last report
      await lk.all([lookup]);
      assert.equal(h.errors.length, 2);
      assert.equal(h.errors[1], 'dnsbl zone zen: timed out (3 errors since the last report); answers like this are never read as listings');
      now += 299_999;
      await lk.all([lookup]);
      assert.equal(h.errors.length, 2, 'the count and the interval restart after a report');
      now += 1;
      await lk.all([lookup]);
      assert.equal(h.errors[2], 'dnsbl zone zen: timed out (2 errors since the last report); answers like this are never read as listings');
      // another zone keeps its own interval and count (no answer configured: the stub's plain Error)
      const other = zone({ name: 'other', zone: 'other.example.org' });
      await lk.all([{ zone: other, item: '192.0.2.99', label: '99.2.0.192', identity: 'ip' }]);
      assert.equal(h.errors[3], 'dnsbl zone other: lookup failed (DNS_ERROR) (1 error since the last report); answers like this are never read as listings');
      assert.deepEqual(h.incrs.at(-1), ['dnsbl:errors:other', 1, 86400]);
    } finally {
      Date.now = realNow;
    }
  });

  it('a failing error counter is harmless', async () => {
    const h = harness({ [name]: new DnsError('DNS_TIMEOUT', name, 'A', 'timeout') }, {}, { incrFails: true });
    const res = await new ZoneLookups(h.deps).all([lookup]);
    await tick();
    assert.equal(res[0]?.outcome.status, 'error');
  });

  it('never rejects: a failure outside DNS is logged and gives no results', async () => {
    const h = harness({});
    h.deps = { ...h.deps, disabled: () => { throw new Error('health state broken'); } };
    assert.deepEqual(await new ZoneLookups(h.deps).all([lookup]), []);
    assert.deepEqual(h.errors, ['dnsbl lookups failed: health state broken']);
  });
});
