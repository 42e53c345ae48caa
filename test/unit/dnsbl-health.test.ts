/**
 * shield.dnsbl's zone health (issue 12, DNSBL health): a probe that times out is "unknown" and
 * changes nothing; a zone is disabled after `health_failures` failed probes in a row (at once when
 * it lists the never-listed test point: it would refuse every client) and enabled again by one
 * good probe; the count is the fleet's (whichever node probes); probes ask the zone, not the
 * resolver's cache.
 */
import assert from 'node:assert/strict';
import { Resolver } from '../../plugins/shield/core/dns';
import { DnsError } from '../../plugins/shield/core/errors';
import { parseDnsblConfig } from '../../plugins/shield/checks/dnsbl-config';
import { ZoneHealth, type HealthConfig } from '../../plugins/shield/checks/dnsbl-health';
import type { ZoneResolver } from '../../plugins/shield/checks/dnsbl-lookup';
import { DnsFixture } from '../helpers/dns-server';

const LISTED = '2.0.0.127.bl.example.net';
const UNLISTED = '1.0.0.127.bl.example.net';

type PointAnswer = string[] | 'timeout' | 'servfail' | 'network';

/** a resolver whose answers for the two test points the test sets */
class ProbeResolver implements ZoneResolver {
  answers = new Map<string, PointAnswer>();
  asked: Array<{ name: string; fresh: boolean }> = [];
  set(listed: PointAnswer, unlisted: PointAnswer): void {
    this.answers.set(LISTED, listed);
    this.answers.set(UNLISTED, unlisted);
  }
  query(name: string, type: 'A', opts?: { readonly fresh?: boolean }): Promise<{ records: string[]; ttl: number }> {
    this.asked.push({ name, fresh: opts?.fresh === true });
    const a = this.answers.get(name) ?? [];
    if (a === 'timeout') return Promise.reject(new DnsError('DNS_TIMEOUT', name, type));
    if (a === 'servfail') return Promise.reject(new DnsError('DNS_SERVFAIL', name, type));
    if (a === 'network') return Promise.reject(new DnsError('DNS_NETWORK', name, type));
    return Promise.resolve({ records: a, ttl: 300 });
  }
}

/** the part of the store the health checks use: one shared map, every node gets the lease */
function sharedStore() {
  const m = new Map<string, string>();
  return {
    map: m,
    leaseAcquire: () => Promise.resolve({ granted: true, count: 1 }),
    cacheGetMany: (keys: readonly string[]) => Promise.resolve(keys.map((k) => m.get(k) ?? null)),
    cacheSetMany: (items: ReadonlyArray<{ key: string; value: string; ttlSec: number }>) => {
      for (const i of items) m.set(i.key, i.value);
      return Promise.resolve();
    },
  };
}

function config(failures?: number): HealthConfig {
  return parseDnsblConfig({ main: { zones: 'bl', ...(failures === undefined ? {} : { health_failures: String(failures) }) }, bl: { zone: 'bl.example.net' } });
}

describe('dnsbl zone health', () => {
  let resolver: ProbeResolver;
  let store: ReturnType<typeof sharedStore>;
  let log: string[];
  const node = (cfg: HealthConfig, r: ZoneResolver = resolver) =>
    new ZoneHealth({ resolver: r, store, log: { error: (m) => log.push(`error: ${m}`), notice: (m) => log.push(`notice: ${m}`) }, config: () => cfg });
  const GOOD: [PointAnswer, PointAnswer] = [['127.0.0.2'], []];
  const BROKEN: [PointAnswer, PointAnswer] = [[], []]; // does not list its listed point

  beforeEach(() => {
    resolver = new ProbeResolver();
    store = sharedStore();
    log = [];
  });

  it('health_failures: 3 by default, at least 1', () => {
    assert.equal(parseDnsblConfig({ main: {} }).main.health_failures, 3);
    assert.equal(config(1).main.health_failures, 1);
    assert.throws(() => config(0), /shield\.dnsbl\.ini \[main\] health_failures/);
  });

  it('a probe that times out is unknown: a healthy zone stays in use', async () => {
    const h = node(config());
    resolver.set(...GOOD);
    await h.round();
    for (const answers of [['timeout', 'timeout'], ['timeout', []], [['127.0.0.2'], 'timeout'], ['network', 'network']] as Array<[PointAnswer, PointAnswer]>) {
      resolver.set(...answers);
      await h.round();
      assert.equal(h.disabled.has('bl'), false, JSON.stringify(answers));
    }
    assert.equal(log.filter((l) => /disabled/.test(l)).length, 0, log.join('\n'));
  });

  it('a probe that times out is unknown: a disabled zone stays disabled', async () => {
    const h = node(config(1));
    resolver.set(...BROKEN);
    await h.round();
    assert.equal(h.disabled.has('bl'), true);
    resolver.set('timeout', 'timeout');
    await h.round();
    await h.round();
    assert.equal(h.disabled.has('bl'), true);
  });

  it('disabled after health_failures failed probes in a row; enabled again by one good probe', async () => {
    const h = node(config(3));
    resolver.set(...BROKEN);
    await h.round();
    await h.round();
    assert.equal(h.disabled.has('bl'), false, 'two failed probes of three');
    resolver.set('servfail', []); // a server failure is a failed probe, not an unknown one
    await h.round();
    assert.equal(h.disabled.has('bl'), true);
    assert.match(h.disabled.get('bl') ?? '', /does not list its test point 127\.0\.0\.2/);
    assert.ok(log.some((l) => /^error: dnsbl zone bl disabled: .*3 failed probes in a row/.test(l)), log.join('\n'));
    resolver.set(...GOOD);
    await h.round();
    assert.equal(h.disabled.has('bl'), false);
    assert.ok(log.some((l) => /enabled again/.test(l)));
  });

  it('a good probe starts the count again; a timeout neither counts nor starts it again', async () => {
    const h = node(config(2));
    for (const step of [BROKEN, GOOD, BROKEN, ['timeout', 'timeout'], GOOD] as Array<[PointAnswer, PointAnswer]>) {
      resolver.set(...step);
      await h.round();
      assert.equal(h.disabled.has('bl'), false);
    }
    resolver.set(...BROKEN);
    await h.round();
    resolver.set('timeout', 'timeout');
    await h.round();
    assert.equal(h.disabled.has('bl'), false);
    resolver.set(...BROKEN);
    await h.round();
    assert.equal(h.disabled.has('bl'), true, 'failed, unknown, failed: two in a row');
  });

  it('a zone that lists the never-listed test point is disabled at the first probe (it would refuse every client)', async () => {
    const h = node(config(3));
    resolver.set(['127.0.0.2'], ['127.0.0.2']);
    await h.round();
    assert.equal(h.disabled.has('bl'), true);
    assert.match(h.disabled.get('bl') ?? '', /lists the test point 127\.0\.0\.1/);
  });

  it('a zone that refuses us (127.255.255.254 for everything) counts failed probes like any other', async () => {
    const h = node(config(2));
    resolver.set(['127.255.255.254'], ['127.255.255.254']);
    await h.round();
    assert.equal(h.disabled.has('bl'), false);
    await h.round();
    assert.equal(h.disabled.has('bl'), true);
  });

  it('the count is the fleet\'s: nodes taking turns at probing add up, and every node follows the verdict', async () => {
    const a = node(config(3));
    const b = node(config(3));
    resolver.set(...BROKEN);
    await a.round();
    await b.round();
    await a.round();
    await b.read();
    assert.equal(a.disabled.has('bl'), true);
    assert.equal(b.disabled.has('bl'), true);
  });

  it('reads a verdict written before health_failures existed ({ok, why})', async () => {
    store.map.set('dnsbl:health:bl.example.net', JSON.stringify({ ok: false, why: 'old' }));
    const h = node(config(3));
    await h.read();
    assert.equal(h.disabled.get('bl'), 'old');
    resolver.set(...BROKEN);
    await h.round();
    assert.equal(h.disabled.has('bl'), true, 'a disabled zone stays disabled on a failed probe');
  });

  it('probes ask fresh, not from the cache', async () => {
    const h = node(config());
    resolver.set(...GOOD);
    await h.round();
    assert.deepEqual(resolver.asked.map((a) => a.fresh), [true, true]);
  });

  describe('with the suite\'s resolver', () => {
    let dns: DnsFixture;
    before(async () => {
      dns = await DnsFixture.start({});
    });
    after(() => dns.close());

    it('a repaired zone is enabled at the next probe, although its broken answers had a TTL of 300', async () => {
      dns.set(LISTED, { A: ['127.0.0.2'], ttl: 300 });
      dns.set(UNLISTED, { A: ['127.0.0.2'], ttl: 300 }); // lists everything
      const r = new Resolver({ nameservers: [dns.address], timeoutMs: 500, tries: 1, cacheSize: 100, minTtl: 0, maxTtl: 3600, negativeTtl: 30 });
      const h = node(config(), r);
      await h.round();
      assert.equal(h.disabled.has('bl'), true);
      dns.zones.delete(UNLISTED); // repaired: NXDOMAIN
      await h.round();
      assert.equal(h.disabled.has('bl'), false, 'the probe asked the zone again');
      assert.equal(dns.countFor(UNLISTED), 2);
      assert.equal((await r.query(UNLISTED, 'A')).status, 'nxdomain', 'the cache holds the repaired answer');
    });
  });
});
