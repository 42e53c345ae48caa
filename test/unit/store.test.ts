/**
 * One contract, two backends: the memory store and the Redis store must behave the same. The Redis
 * run uses the machine's Redis (127.0.0.1:6379) under a test key prefix.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { RedisStore, type RedisLike } from '../../plugins/shield/core/redis-store';
import { ResilientStore } from '../../plugins/shield/core/shared-store';
import { MemoryStore, gcra, type Store } from '../../plugins/shield/core/store';

interface Client extends RedisLike {
  connect(): Promise<unknown>;
  destroy(): void;
  on(e: string, fn: (...a: unknown[]) => void): unknown;
}
function redisClient(port = 6379): Client {
  const base = path.dirname(require.resolve('haraka-plugin-redis'));
  const redis = require(require.resolve('redis', { paths: [base] })) as { createClient(o: unknown): Client };
  const c = redis.createClient({ socket: { host: '127.0.0.1', port, reconnectStrategy: false }, disableOfflineQueue: true });
  c.on('error', () => undefined);
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** live leases in `key`: an acquire with max 0 never takes one and reports the count */
const leaseCount = async (store: Store, key: string) => (await store.leaseAcquire(key, '(count)', 1, 0)).count;

function contract(name: string, make: () => Promise<{ store: Store; done: () => Promise<void> }>): void {
  describe(`store contract: ${name}`, function () {
    this.timeout(5000);
    let store: Store;
    let done: () => Promise<void>;
    beforeEach(async () => ({ store, done } = await make()));
    afterEach(async () => done());

    it('counters start at the increment, add up, and expire with their TTL', async () => {
      assert.equal(await store.getCount('c'), 0);
      assert.equal(await store.incr('c', 1, 0.3), 1);
      assert.equal(await store.incr('c', 2, 10), 3, 'a later incr does not extend or reset');
      assert.equal(await store.getCount('c'), 3);
      await sleep(400);
      assert.equal(await store.getCount('c'), 0);
      assert.equal(await store.incr('c', 1, 10), 1);
    });

    it('leases admit at most max holders, atomically, and re-acquiring is idempotent', async () => {
      const results = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((id) => store.leaseAcquire('l', id, 10, 3)));
      assert.equal(results.filter((r) => r.granted).length, 3);
      assert.equal(await leaseCount(store, 'l'), 3);
      const holder = ['a', 'b', 'c', 'd', 'e'][results.findIndex((r) => r.granted)] as string;
      assert.deepEqual(await store.leaseAcquire('l', holder, 10, 3), { granted: true, count: 3 });
      await store.leaseReleaseMany(['l'], holder);
      assert.equal(await leaseCount(store, 'l'), 2);
      assert.equal((await store.leaseAcquire('l', 'z', 10, 3)).granted, true);
    });

    it('leases expire unless refreshed', async () => {
      await store.leaseAcquire('e', 'keep', 0.3, 5);
      await store.leaseAcquire('e', 'drop', 0.3, 5);
      await sleep(150);
      await store.leaseRefreshMany(['e'], 'keep', 0.5);
      await sleep(250);
      assert.equal(await leaseCount(store, 'e'), 1);
      assert.equal((await store.leaseAcquire('e', 'new', 1, 1)).granted, false, 'the refreshed lease still counts');
    });

    it('admit: concurrency and rates all or nothing; a refused limit changes nothing', async () => {
      const leases = [{ key: 'ip', max: 2 }, { key: 'net', max: 3 }];
      const rates = [{ key: 'rate', limit: 10, windowSec: 60 }];
      assert.equal((await store.admit('c1', leases, 10, rates)).admitted, true);
      assert.equal((await store.admit('c2', leases, 10, rates)).admitted, true);
      const third = await store.admit('c3', leases, 10, rates);
      assert.deepEqual(third, { admitted: false, refused: { kind: 'lease', index: 0 }, retryAfterMs: 0 });
      assert.equal(await leaseCount(store, 'net'), 2, 'the refused admission took no lease in the other key');
      // a rate refusal leaves the leases alone
      const r = await store.admit('c4', [{ key: 'other', max: 5 }], 10, [{ key: 'tight', limit: 1, windowSec: 60 }]);
      assert.equal(r.admitted, true);
      const r2 = await store.admit('c5', [{ key: 'other', max: 5 }], 10, [{ key: 'tight', limit: 1, windowSec: 60 }]);
      assert.equal(r2.admitted, false);
      assert.deepEqual(r2.refused, { kind: 'rate', index: 0 });
      assert.ok(r2.retryAfterMs > 59_000 && r2.retryAfterMs <= 60_000, String(r2.retryAfterMs));
      assert.equal(await leaseCount(store, 'other'), 1);
      await store.leaseReleaseMany(['ip', 'net'], 'c1');
      assert.equal(await leaseCount(store, 'ip'), 1);
      assert.equal((await store.admit('c3', leases, 10, rates)).admitted, true);
    });

    it('admit is atomic under concurrency: exactly max of many simultaneous callers get in', async () => {
      const got = await Promise.all(Array.from({ length: 20 }, (_, i) => store.admit(`x${i}`, [{ key: 'race', max: 7 }], 10, [])));
      assert.equal(got.filter((g) => g.admitted).length, 7);
      const rated = await Promise.all(Array.from({ length: 20 }, (_, i) => store.admit(`y${i}`, [], 10, [{ key: 'burst', limit: 5, windowSec: 60 }])));
      assert.equal(rated.filter((g) => g.admitted).length, 5);
    });

    it('rates refill at limit/window: one more is admitted after window/limit', async () => {
      const rate = [{ key: 'refill', limit: 4, windowSec: 0.4 }];
      for (let i = 0; i < 4; i++) assert.equal((await store.admit('a', [], 10, rate)).admitted, true);
      assert.equal((await store.admit('a', [], 10, rate)).admitted, false);
      await sleep(130);
      assert.equal((await store.admit('a', [], 10, rate)).admitted, true, 'one interval (100 ms) later');
      assert.equal((await store.admit('a', [], 10, rate)).admitted, false);
    });

    it('leaseRefreshMany extends (and re-creates) leases; expired ones stop counting', async () => {
      await store.admit('k', [{ key: 'a', max: 5 }, { key: 'b', max: 5 }], 0.3, []);
      await store.admit('gone', [{ key: 'a', max: 5 }], 0.3, []);
      await sleep(150);
      await store.leaseRefreshMany(['a', 'b', 'c'], 'k', 1);
      await sleep(250);
      assert.equal(await leaseCount(store, 'a'), 1);
      assert.equal(await leaseCount(store, 'b'), 1);
      assert.equal(await leaseCount(store, 'c'), 1, 're-created');
    });

    it('sets hold members with values and optional expiry', async () => {
      await store.setPut('s', '192.0.2.1', '{"reason":"spam"}', null);
      await store.setPut('s', '192.0.2.2', 'short', 0.3);
      let entries = await store.setEntries('s');
      assert.deepEqual(entries.map((e) => e.member).sort(), ['192.0.2.1', '192.0.2.2']);
      assert.equal(entries.find((e) => e.member === '192.0.2.1')?.value, '{"reason":"spam"}');
      assert.equal(entries.find((e) => e.member === '192.0.2.2')?.value, 'short');
      assert.equal(entries.find((e) => e.member === '192.0.2.1')?.expiresAt, null);
      assert.ok((entries.find((e) => e.member === '192.0.2.2')?.expiresAt ?? 0) > Date.now());
      await sleep(400);
      assert.equal(await store.setDelete('s', '192.0.2.2'), false, 'an expired member is gone');
      entries = await store.setEntries('s');
      assert.deepEqual(entries.map((e) => e.member), ['192.0.2.1']);
      assert.equal(await store.setDelete('s', '192.0.2.1'), true);
      assert.equal(await store.setDelete('s', '192.0.2.1'), false);
      assert.deepEqual(await store.setEntries('s'), []);
    });

    it('cacheGetMany / cacheSetMany read and write several keys at once, each with its TTL', async () => {
      await store.cacheSetMany([
        { key: 'm1', value: 'a', ttlSec: 10 },
        { key: 'm2', value: '', ttlSec: 0.3 },
        { key: 'm3', value: 'never', ttlSec: 0 },
      ]);
      assert.deepEqual(await store.cacheGetMany(['m1', 'm2', 'm3', 'm4']), ['a', '', null, null]);
      await sleep(400);
      assert.deepEqual(await store.cacheGetMany(['m1', 'm2']), ['a', null]);
      assert.deepEqual(await store.cacheGetMany([]), []);
    });
  });
}

let n = 0;
contract('memory', async () => {
  const s = new MemoryStore();
  return { store: s, done: async () => s.close() };
});

contract('redis', async () => {
  const c = redisClient();
  await c.connect();
  const prefix = `shield-test:${process.pid}:store${++n}:`;
  return {
    store: new RedisStore(c, prefix),
    done: async () => {
      const keys = (await c.sendCommand(['KEYS', `${prefix}*`])) as string[];
      if (keys.length) await c.sendCommand(['DEL', ...keys]);
      c.destroy();
    },
  };
});

describe('store: every Redis key the limits write has a TTL', () => {
  it('admit and refresh set TTLs in the same step', async () => {
    const c = redisClient();
    await c.connect();
    const prefix = `shield-test:${process.pid}:ttl:`;
    try {
      const st = new RedisStore(c, prefix);
      await st.admit('id', [{ key: 'l', max: 3 }], 30, [{ key: 'r', limit: 10, windowSec: 60 }]);
      await st.leaseRefreshMany(['l2'], 'id', 30);
      for (const k of ['l', 'r', 'l2']) {
        const ttl = Number(await c.sendCommand(['PTTL', `${prefix}${k}`]));
        assert.ok(ttl > 0 && ttl <= 30_000, `${k}: ${ttl}`);
      }
    } finally {
      const keys = (await c.sendCommand(['KEYS', `${prefix}*`])) as string[];
      if (keys.length) await c.sendCommand(['DEL', ...keys]);
      c.destroy();
    }
  });
});

describe('gcra (fake clock)', () => {
  it('admits a burst of limit, then one per window/limit, and never two bursts across a boundary', () => {
    let tat: number | null = null;
    let now = 1_000_000;
    const hit = () => {
      const g = gcra(tat, now, 30, 60_000);
      if (g.ok) tat = g.tat;
      return g;
    };
    for (let i = 0; i < 30; i++) assert.equal(hit().ok, true, `burst ${i}`);
    const refused = hit();
    assert.equal(refused.ok, false);
    assert.equal(refused.retryAfterMs, 2000, 'one more after window/limit = 2 s');
    now += 1999;
    assert.equal(hit().ok, false);
    now += 1;
    assert.equal(hit().ok, true);
    // a fixed window would allow 30 more right after a minute boundary; here 61 s of waiting buys 30
    now += 59_000;
    let n = 0;
    while (hit().ok) n++;
    assert.equal(n, 29, 'what accrued in 59 s at one per 2 s (and not a fresh 30)');
  });

  it('an idle key is a full bucket again, and its TTL is the time to drain', () => {
    const g = gcra(null, 5000, 10, 10_000);
    assert.deepEqual(g, { ok: true, tat: 6000, retryAfterMs: 0 });
    assert.equal(gcra(1000, 5000, 10, 10_000).tat, 6000, 'a past TAT counts as now');
  });

  it('the memory store follows the same algorithm with its clock', async () => {
    let now = 0;
    const st = new MemoryStore(() => now, 0);
    const rate = [{ key: 'k', limit: 3, windowSec: 3 }];
    for (let i = 0; i < 3; i++) assert.equal((await st.admit('x', [], 1, rate)).admitted, true);
    assert.equal((await st.admit('x', [], 1, rate)).admitted, false);
    now += 1000;
    assert.equal((await st.admit('x', [], 1, rate)).admitted, true);
    assert.equal((await st.admit('x', [], 1, rate)).admitted, false);
    now += 10_000;
    for (let i = 0; i < 3; i++) assert.equal((await st.admit('x', [], 1, rate)).admitted, true);
  });
});

describe('resilient store', () => {
  it('uses memory at once when Redis is unreachable, with one warning, and never throws', async () => {
    const warnings: string[] = [];
    const s = new ResilientStore({ warn: (m) => warnings.push(m), info: () => undefined }, { prefix: 't:', timeoutMs: 100 });
    s.connect({ socket: { host: '127.0.0.1', port: 9 } });
    const t0 = Date.now();
    assert.equal(await s.incr('x', 1, 10), 1);
    assert.equal(await s.incr('x', 1, 10), 2);
    assert.ok(Date.now() - t0 < 100, 'no waiting on a dead Redis');
    assert.equal(s.backend, 'memory');
    await sleep(300);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0] ?? '', /Redis at redis:\/\/127\.0\.0\.1:9 unavailable/);
    await s.close();
  });

  it('falls back to memory when Redis is slow, within the timeout', async () => {
    const slow = { isReady: true, sendCommand: () => new Promise<unknown>(() => undefined), on: () => undefined, connect: async () => undefined };
    const warnings: string[] = [];
    const s = new ResilientStore({ warn: (m) => warnings.push(m), info: () => undefined }, { prefix: 't:', timeoutMs: 50 });
    s.attach(slow);
    const t0 = Date.now();
    assert.equal(await s.incr('x', 5, 10), 5);
    const took = Date.now() - t0;
    assert.ok(took >= 45 && took < 500, `took ${took} ms`);
    assert.match(warnings[0] ?? '', /did not answer in 50 ms/);
    await s.close();
  });

  it('uses Redis when it is there', async () => {
    const s = new ResilientStore({ warn: () => undefined, info: () => undefined }, { prefix: `shield-test:${process.pid}:res:`, timeoutMs: 500 });
    s.connect({ socket: { host: '127.0.0.1', port: 6379 } });
    for (let i = 0; i < 50 && s.backend !== 'redis'; i++) await sleep(20);
    assert.equal(s.backend, 'redis');
    await s.cacheSetMany([{ key: 'k', value: 'v', ttlSec: 1 }]);
    assert.deepEqual(await s.memory.cacheGetMany(['k']), [null], 'written to Redis, not memory');
    assert.deepEqual(await s.cacheGetMany(['k']), ['v']);
    await s.close();
  });
});
