import assert from 'node:assert/strict';
import { parsePattern, type Zone } from '../../plugins/shield/checks/dnsbl';
import type { ZoneProbe } from '../../plugins/shield/checks/dnsbl-config';
import { ZoneHealth, type HealthConfig, type HealthDeps } from '../../plugins/shield/checks/dnsbl-health';
import { DnsError } from '../../plugins/shield/core/errors';

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

type Answer = string[] | 'timeout';

interface Harness {
  deps: HealthDeps;
  cfg: HealthConfig;
  queries: string[];
  leases: Array<[string, string, number, number]>;
  cache: Map<string, string>;
  writes: Array<{ key: string; value: string; ttlSec: number }>;
  reads: string[][];
  errors: string[];
  notices: string[];
  granted: boolean;
}

function harness(answers: Record<string, Answer>, cfg: Partial<HealthConfig> = {}): Harness {
  const zen = zone();
  const h: Harness = {
    cfg: {
      main: { health_interval: 300 },
      zones: [zen],
      probes: new Map<string, ZoneProbe>([['zen', { listed: '127.0.0.2', unlisted: '127.0.0.1' }]]),
      ...cfg,
    },
    queries: [],
    leases: [],
    cache: new Map(),
    writes: [],
    reads: [],
    errors: [],
    notices: [],
    granted: true,
    deps: undefined as unknown as HealthDeps,
  };
  h.deps = {
    resolver: {
      async query(name: string) {
        h.queries.push(name);
        const a = answers[name];
        if (a === undefined || a === 'timeout') throw new DnsError('DNS_TIMEOUT', name, 'A', 'timeout');
        return { records: a, ttl: 60 };
      },
    },
    store: {
      async leaseAcquire(key: string, id: string, ttlSec: number, max: number) {
        h.leases.push([key, id, ttlSec, max]);
        return { granted: h.granted, count: 1 };
      },
      async cacheGetMany(keys: readonly string[]) {
        h.reads.push([...keys]);
        return keys.map((k) => h.cache.get(k) ?? null);
      },
      async cacheSetMany(entries: ReadonlyArray<{ key: string; value: string; ttlSec: number }>) {
        for (const e of entries) {
          h.writes.push(e);
          h.cache.set(e.key, e.value);
        }
      },
    } as HealthDeps['store'],
    log: { error: (m: string) => h.errors.push(m), notice: (m: string) => h.notices.push(m) },
    config: () => h.cfg,
  };
  return h;
}

const ZEN_LISTED = '2.0.0.127.zen.example.org';
const ZEN_UNLISTED = '1.0.0.127.zen.example.org';

describe('dnsbl health: one node probes, every node reads the verdicts', () => {
  it('a healthy zone: probes both test points (as reversed addresses), shares ok for 3 intervals', async () => {
    const h = harness({ [ZEN_LISTED]: ['127.0.0.2'], [ZEN_UNLISTED]: [] });
    const zh = new ZoneHealth(h.deps);
    await zh.round();
    assert.deepEqual(h.queries.sort(), [ZEN_UNLISTED, ZEN_LISTED]);
    assert.equal(h.leases.length, 1);
    const [key, id, ttl, max] = h.leases[0] as [string, string, number, number];
    assert.equal(key, 'dnsbl:probe');
    assert.match(id, /^.+:\d+:[0-9a-f]{6}$/, 'host:pid:random');
    assert.equal(ttl, 270, 'held until just before the next round (0.9 x health_interval)');
    assert.equal(max, 1, 'one prober');
    assert.deepEqual(h.writes, [{ key: 'dnsbl:health:zen.example.org', value: '{"ok":true,"why":""}', ttlSec: 900 }]);
    assert.deepEqual(h.reads, [['dnsbl:health:zen.example.org']]);
    assert.equal(zh.disabled.size, 0);
    assert.deepEqual(h.errors, []);
    assert.deepEqual(h.notices, []);
  });

  it('a zone that lists everything is disabled (logged once), and enabled again when it recovers (noticed)', async () => {
    const answers: Record<string, Answer> = { [ZEN_LISTED]: ['127.0.0.2'], [ZEN_UNLISTED]: ['127.0.0.2'] };
    const h = harness(answers);
    const zh = new ZoneHealth(h.deps);
    await zh.round();
    const why = 'it lists the test point 127.0.0.1, which no zone lists (it lists everything, or refuses our queries: 127.0.0.2)';
    assert.deepEqual([...zh.disabled], [['zen', why]]);
    assert.deepEqual(h.errors, [`dnsbl zone zen disabled: ${why}`]);
    assert.deepEqual(JSON.parse(h.writes[0]?.value as string), { ok: false, why });
    await zh.round();
    assert.equal(h.errors.length, 1, 'still disabled: not logged again');
    assert.equal(zh.disabled.get('zen'), why);
    answers[ZEN_UNLISTED] = [];
    await zh.round();
    assert.equal(zh.disabled.size, 0);
    assert.deepEqual(h.notices, ['dnsbl zone zen enabled again: its test points answer as they should']);
    await zh.round();
    assert.equal(h.notices.length, 1, 'an enabled zone that stays well is not noticed again');
  });

  it('a zone that does not answer at all is disabled', async () => {
    const h = harness({});
    const zh = new ZoneHealth(h.deps);
    await zh.round();
    assert.equal(zh.disabled.get('zen'), 'it does not answer (both test points timed out or failed)');
  });

  it('domain zones are asked about names as they are; a zone without test points is always ok', async () => {
    const dbl = zone({ name: 'dbl', type: 'domain', zone: 'dbl.example.org', listed: [] });
    const quiet = zone({ name: 'quiet', zone: 'quiet.example.org' });
    const h = harness(
      { 'test.dbl.example.org': ['127.0.1.2'], 'invalid.dbl.example.org': [] },
      { zones: [dbl, quiet], probes: new Map([['dbl', { listed: 'test', unlisted: 'invalid' }]]) },
    );
    const zh = new ZoneHealth(h.deps);
    await zh.round();
    assert.deepEqual(h.queries.sort(), ['invalid.dbl.example.org', 'test.dbl.example.org']);
    assert.deepEqual(h.writes, [
      { key: 'dnsbl:health:dbl.example.org', value: '{"ok":true,"why":""}', ttlSec: 900 },
      { key: 'dnsbl:health:quiet.example.org', value: '{"ok":true,"why":""}', ttlSec: 900 },
    ]);
  });

  it('an empty test point is not probed; a DQS key sits in the query name', async () => {
    const dq = zone({ name: 'dq', zone: 'zen.dq.example.net', key: 'KEY' });
    const h = harness({ '2.0.0.127.KEY.zen.dq.example.net': ['127.0.0.2'] }, { zones: [dq], probes: new Map([['dq', { listed: '127.0.0.2', unlisted: '' }]]) });
    const zh = new ZoneHealth(h.deps);
    await zh.round();
    assert.deepEqual(h.queries, ['2.0.0.127.KEY.zen.dq.example.net']);
    assert.equal(zh.disabled.size, 0);
    const h2 = harness({}, { zones: [dq], probes: new Map([['dq', { listed: '', unlisted: '127.0.0.1' }]]) });
    await new ZoneHealth(h2.deps).round();
    assert.deepEqual(h2.queries, ['1.0.0.127.KEY.zen.dq.example.net']);
    assert.deepEqual(JSON.parse(h2.writes[0]?.value as string), { ok: true, why: '' }, 'one failed point alone: not "does not answer"');
  });

  it('a zone that stops listing its listed test point is disabled, with what it answered', async () => {
    const h = harness({ [ZEN_LISTED]: ['127.0.0.9'], [ZEN_UNLISTED]: [] });
    const zh = new ZoneHealth(h.deps);
    await zh.round();
    assert.equal(zh.disabled.get('zen'), 'it does not list its test point 127.0.0.2 (answered 127.0.0.9)');
  });

  it('the nodes that did not get the lease only read the verdicts', async () => {
    const h = harness({ [ZEN_LISTED]: ['127.0.0.2'], [ZEN_UNLISTED]: [] });
    h.granted = false;
    h.cache.set('dnsbl:health:zen.example.org', JSON.stringify({ ok: false, why: 'it does not answer' }));
    const zh = new ZoneHealth(h.deps);
    await zh.round();
    assert.deepEqual(h.queries, []);
    assert.deepEqual(h.writes, []);
    assert.equal(zh.disabled.get('zen'), 'it does not answer');
    assert.deepEqual(h.errors, ['dnsbl zone zen disabled: it does not answer']);
  });

  it('no verdict yet: nothing changes', async () => {
    const h = harness({});
    const zh = new ZoneHealth(h.deps);
    zh.disabled.set('zen', 'earlier');
    await zh.read();
    assert.equal(zh.disabled.get('zen'), 'earlier');
    assert.deepEqual(h.reads, [['dnsbl:health:zen.example.org']]);
  });

  it('health_interval 0 or no zones: no round at all', async () => {
    const h = harness({}, { main: { health_interval: 0 } });
    await new ZoneHealth(h.deps).round();
    assert.deepEqual(h.leases, []);
    assert.deepEqual(h.reads, []);
    const h2 = harness({}, { zones: [] });
    await new ZoneHealth(h2.deps).round();
    assert.deepEqual(h2.leases, []);
    assert.deepEqual(h2.reads, []);
  });
});

describe('dnsbl health: the timers', () => {
  interface FakeTimer {
    kind: 'interval' | 'timeout';
    ms: number;
    fn: () => void;
    unrefed: boolean;
    cleared: boolean;
  }

  function withFakeTimers(body: (timers: FakeTimer[]) => Promise<void>): Promise<void> {
    const g = globalThis as unknown as Record<string, unknown>;
    const saved = { setInterval: g.setInterval, setTimeout: g.setTimeout, clearInterval: g.clearInterval };
    const timers: FakeTimer[] = [];
    const make = (kind: FakeTimer['kind']) => (fn: () => void, ms: number) => {
      const t: FakeTimer = { kind, ms, fn, unrefed: false, cleared: false };
      timers.push(t);
      return { unref: () => ((t.unrefed = true), t) };
    };
    g.setInterval = make('interval');
    g.setTimeout = make('timeout');
    g.clearInterval = (handle: { unref(): FakeTimer }) => {
      handle.unref().cleared = true;
    };
    return body(timers).finally(() => Object.assign(g, saved));
  }

  it('start: a round every health_interval, the first after 500 ms, a second read after 3 s; all unref()ed', async () => {
    const h = harness({ [ZEN_LISTED]: ['127.0.0.2'], [ZEN_UNLISTED]: [] });
    const zh = new ZoneHealth(h.deps);
    let timers: FakeTimer[] = [];
    await withFakeTimers(async (t) => {
      zh.start();
      timers = [...t];
    });
    assert.deepEqual(
      timers.map((t) => [t.kind, t.ms, t.unrefed]),
      [
        ['interval', 300_000, true],
        ['timeout', 500, true],
        ['timeout', 3000, true],
      ],
    );
    timers[1]?.fn();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(h.leases.length, 1, 'the first timeout runs a round');
    timers[2]?.fn();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(h.reads.length, 2, 'the second timeout reads the verdicts again');
    assert.equal(h.leases.length, 1, '... without probing');
    timers[0]?.fn();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(h.leases.length, 2, 'the interval runs a round');
  });

  it('a restart clears the old interval; health_interval 0 starts nothing', async () => {
    const h = harness({});
    const zh = new ZoneHealth(h.deps);
    await withFakeTimers(async (t) => {
      zh.start();
      const first = t[0] as FakeTimer;
      h.cfg = { ...h.cfg, main: { health_interval: 0 } };
      zh.start();
      assert.equal(first.cleared, true);
      assert.equal(t.length, 3, 'nothing new');
      zh.start();
      assert.equal(t.length, 3);
    });
  });

  it('a failed round is logged, never thrown; a failed read is ignored', async () => {
    const h = harness({});
    h.deps = {
      ...h.deps,
      store: {
        leaseAcquire: async () => {
          throw new Error('store down');
        },
        cacheGetMany: async () => {
          throw new Error('store down');
        },
        cacheSetMany: async () => undefined,
      } as HealthDeps['store'],
    };
    const zh = new ZoneHealth(h.deps);
    let timers: FakeTimer[] = [];
    await withFakeTimers(async (t) => {
      zh.start();
      timers = [...t];
    });
    timers[1]?.fn();
    timers[2]?.fn();
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(h.errors, ['dnsbl health check: store down']);
  });
});
