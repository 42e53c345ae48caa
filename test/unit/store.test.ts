/**
 * One contract, two backends: the memory store and the Redis store must behave the same. The Redis
 * run uses the machine's Redis (127.0.0.1:6379) under a test key prefix.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { RedisStore, type RedisLike } from '../../plugins/shield/core/redis-store';
import { ResilientStore } from '../../plugins/shield/core/shared-store';
import { MemoryStore, type Store } from '../../plugins/shield/core/store';

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
      assert.equal(await store.leaseCount('l'), 3);
      const holder = ['a', 'b', 'c', 'd', 'e'][results.findIndex((r) => r.granted)] as string;
      assert.deepEqual(await store.leaseAcquire('l', holder, 10, 3), { granted: true, count: 3 });
      await store.leaseRelease('l', holder);
      assert.equal(await store.leaseCount('l'), 2);
      assert.equal((await store.leaseAcquire('l', 'z', 10, 3)).granted, true);
    });

    it('leases expire unless refreshed', async () => {
      await store.leaseAcquire('e', 'keep', 0.3, 5);
      await store.leaseAcquire('e', 'drop', 0.3, 5);
      await sleep(150);
      assert.equal(await store.leaseRefresh('e', 'keep', 0.5), true);
      await sleep(250);
      assert.equal(await store.leaseCount('e'), 1);
      assert.equal(await store.leaseRefresh('e', 'drop', 1), false, 'an expired lease cannot be refreshed');
      assert.equal((await store.leaseAcquire('e', 'new', 1, 1)).granted, false, 'the refreshed lease still counts');
    });

    it('sets hold members with values and optional expiry', async () => {
      await store.setPut('s', '192.0.2.1', '{"reason":"spam"}', null);
      await store.setPut('s', '192.0.2.2', 'short', 0.3);
      assert.equal(await store.setGet('s', '192.0.2.1'), '{"reason":"spam"}');
      assert.equal(await store.setGet('s', '192.0.2.2'), 'short');
      assert.equal(await store.setGet('s', 'absent'), null);
      let entries = await store.setEntries('s');
      assert.deepEqual(entries.map((e) => e.member).sort(), ['192.0.2.1', '192.0.2.2']);
      assert.equal(entries.find((e) => e.member === '192.0.2.1')?.expiresAt, null);
      assert.ok((entries.find((e) => e.member === '192.0.2.2')?.expiresAt ?? 0) > Date.now());
      await sleep(400);
      assert.equal(await store.setGet('s', '192.0.2.2'), null);
      entries = await store.setEntries('s');
      assert.deepEqual(entries.map((e) => e.member), ['192.0.2.1']);
      assert.equal(await store.setDelete('s', '192.0.2.1'), true);
      assert.equal(await store.setDelete('s', '192.0.2.1'), false);
      assert.deepEqual(await store.setEntries('s'), []);
    });

    it('the cache returns what was set until its TTL passes', async () => {
      assert.equal(await store.cacheGet('k'), null);
      await store.cacheSet('k', 'v', 0.3);
      assert.equal(await store.cacheGet('k'), 'v');
      await sleep(400);
      assert.equal(await store.cacheGet('k'), null);
      await store.cacheSet('k', 'w', 10);
      await store.cacheDelete('k');
      assert.equal(await store.cacheGet('k'), null);
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
    await s.cacheSet('k', 'v', 5);
    assert.equal(await s.memory.cacheGet('k'), null, 'written to Redis, not memory');
    assert.equal(await s.cacheGet('k'), 'v');
    await s.cacheDelete('k');
    await s.close();
  });
});
