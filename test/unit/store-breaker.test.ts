/**
 * The shared store under a slow or hung Redis, against a real redis-server behind a delaying proxy:
 * one wait per failure, not one per operation (circuit breaker), recovery logged, a cap on waiting
 * operations, a timed-out admit that Redis carries out later undone, Redis's clock in the scripts,
 * and a mass expiry that used to break the set read.
 */
import assert from 'node:assert/strict';
import { RedisStore } from '../../plugins/shield/core/redis-store';
import { ResilientStore } from '../../plugins/shield/core/shared-store';
import { redisClient as client, dropKeys } from '../helpers/redis-client';
import { SlowProxy } from '../helpers/slow-proxy';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


let n = 0;
const prefix = () => `shield-test:${process.pid}:breaker${++n}:`;

async function cleanup(prefixText: string): Promise<void> {
  const c = client();
  await c.connect();
  await dropKeys(c, prefixText);
  c.destroy();
}

describe('resilient store: a slow Redis (circuit breaker)', function () {
  this.timeout(20000);
  let proxy: SlowProxy;
  beforeEach(async () => {
    proxy = await SlowProxy.start(6379);
  });
  afterEach(async () => {
    await proxy.close();
  });

  async function store(p: string, opts: { retryAfterMs?: number; maxInFlight?: number; timeoutMs?: number } = {}) {
    const log: string[] = [];
    const s = new ResilientStore({ warn: (m) => log.push(`warn ${m}`), info: (m) => log.push(`info ${m}`) }, { prefix: p, timeoutMs: opts.timeoutMs ?? 100, retryAfterMs: opts.retryAfterMs ?? 1000, maxInFlight: opts.maxInFlight });
    s.connect({ socket: { host: '127.0.0.1', port: proxy.port } });
    for (let i = 0; i < 100 && s.backend !== 'redis'; i++) await sleep(20);
    assert.equal(s.backend, 'redis', log.join('\n'));
    return { s, log };
  }

  it('after one timeout, operations use memory at once until retry_after; then one probe brings Redis back, logged once each way', async () => {
    const p = prefix();
    const { s, log } = await store(p);
    try {
      proxy.delayMs = 400;
      const t0 = Date.now();
      await s.incr('a', 1, 60);
      const first = Date.now() - t0;
      assert.ok(first >= 90 && first < 300, `the first operation waits the timeout once (${first} ms)`);
      const t1 = Date.now();
      for (let i = 0; i < 20; i++) await s.cacheGetMany(['x']);
      assert.ok(Date.now() - t1 < 50, `20 operations in ${Date.now() - t1} ms: memory at once, no wait each`);
      assert.equal(log.filter((l) => l.startsWith('warn')).length, 1, log.join('\n'));
      assert.match(log.find((l) => l.startsWith('warn')) ?? '', /did not answer in 100 ms/);

      // Redis answers again (SIGCONT): after retry_after one operation probes, and recovery is logged
      proxy.delayMs = 0;
      await sleep(1100);
      await s.incr('b', 1, 60);
      assert.equal(s.backend, 'redis');
      assert.equal(log.filter((l) => /^info shared store: using Redis/.test(l)).length, 2, `up at start and once after recovery:\n${log.join('\n')}`);
      await s.cacheSetMany([{ key: 'k', value: 'v', ttlSec: 5 }]);
      assert.deepEqual(await s.memory.cacheGetMany(['k']), [null], 'Redis is used again, not memory');
    } finally {
      await s.close();
      await cleanup(p);
    }
  });

  it('while the breaker is open only one probe goes to Redis; the others keep using memory', async () => {
    const p = prefix();
    const { s } = await store(p, { retryAfterMs: 200, timeoutMs: 300 });
    try {
      proxy.delayMs = 1000;
      await s.incr('a', 1, 60); // trips the breaker
      await sleep(250);
      const t0 = Date.now();
      const waits = await Promise.all(
        Array.from({ length: 10 }, async () => {
          const t = Date.now();
          await s.cacheGetMany(['x']);
          return Date.now() - t;
        }),
      );
      assert.equal(waits.filter((w) => w >= 250).length, 1, `one probe waited, the rest did not: ${waits.join(', ')}`);
      assert.ok(Date.now() - t0 < 600);
    } finally {
      await s.close();
      await cleanup(p);
    }
  });

  it('at most max_in_flight operations wait on Redis; more use memory, logged once', async () => {
    const p = prefix();
    const { s, log } = await store(p, { maxInFlight: 2, timeoutMs: 1000 });
    try {
      proxy.delayMs = 150;
      const r = await Promise.all(Array.from({ length: 6 }, (_, i) => s.incr(`c${i}`, 1, 60).then(() => s.memory.getCount(`c${i}`))));
      // the ones that went to memory counted there
      assert.equal(r.filter((v) => v === 1).length, 4, `4 of 6 on memory: ${r.join(',')}`);
      assert.equal(log.filter((l) => /waiting at once/.test(l)).length, 1, log.join('\n'));
    } finally {
      await s.close();
      await cleanup(p);
    }
  });

  it('an admit Redis carries out after the timeout is undone: no lease held by nobody, no rate event counted twice', async () => {
    const p = prefix();
    const { s } = await store(p, { timeoutMs: 100 });
    const c = client();
    await c.connect();
    try {
      const rate = { key: 'rate', limit: 2, windowSec: 60 };
      proxy.delayMs = 300;
      const r = await s.admit('sess1', [{ key: 'lease', max: 5 }], 30, [rate]);
      assert.equal(r.admitted, true, 'admitted on memory');
      // the admit reaches Redis after 300 ms, its answer comes back after 600; the undo (a script
      // Redis may not know yet: EVALSHA, then EVAL) takes up to three more round trips
      await sleep(2600);
      assert.equal(Number(await c.sendCommand(['ZCARD', `${p}lease`])), 0, 'the late lease was released');
      assert.equal(await c.sendCommand(['GET', `${p}rate`]), null, 'the late rate event was given back');
      proxy.delayMs = 0;
    } finally {
      c.destroy();
      await s.close();
      await cleanup(p);
    }
  });
});

describe('redis store: the scripts use Redis\'s clock', function () {
  this.timeout(20000);

  it('a node whose clock runs 2 h ahead does not expire another node\'s live lease', async () => {
    const p = prefix();
    const c = client();
    await c.connect();
    const st = new RedisStore(c, p);
    const realNow = Date.now;
    try {
      assert.equal((await st.leaseAcquire('l', 'node-a', 30, 1)).granted, true);
      Date.now = () => realNow() + 2 * 3600_000;
      assert.equal((await st.leaseAcquire('l', 'node-b', 30, 1)).granted, false, 'node-a still holds the only slot');
      const ad = await st.admit('node-b', [{ key: 'l', max: 1 }], 30, []);
      assert.equal(ad.admitted, false);
    } finally {
      Date.now = realNow;
      c.destroy();
      await cleanup(p);
    }
  });

  it('a set entry expires by Redis time, whatever the writer\'s clock', async () => {
    const p = prefix();
    const c = client();
    await c.connect();
    const st = new RedisStore(c, p);
    const realNow = Date.now;
    try {
      Date.now = () => realNow() - 3600_000;
      await st.setPut('s', 'm', 'v', 60);
      Date.now = realNow;
      const [e] = await st.setEntries('s');
      assert.ok(e && e.expiresAt !== null && Math.abs(e.expiresAt - (realNow() + 60_000)) < 5000, `expires in 60 s of Redis time: ${e?.expiresAt}`);
    } finally {
      Date.now = realNow;
      c.destroy();
      await cleanup(p);
    }
  });
});

describe('redis store: mass expiry', function () {
  this.timeout(60000);

  it('20,000 members expiring at once: reads skip them, writes remove them in bounded steps, never a value without its expiry', async () => {
    const p = prefix();
    const c = client();
    await c.connect();
    const st = new RedisStore(c, p);
    try {
      for (let i = 0; i < 20_000; i += 500) {
        await Promise.all(Array.from({ length: 500 }, (_, j) => st.setPut('s', `m${i + j}`, 'v', 0.05)));
      }
      await sleep(100);
      await st.setPut('s', 'keep', 'v', null);
      const snap = await st.setSnapshot('s');
      assert.deepEqual(
        snap.entries.map((e) => e.member),
        ['keep'],
      );
      for (let i = 0; i < 45; i++) await st.setPut('s', 'keep', 'v', null);
      const hlen = Number(await c.sendCommand(['HLEN', `${p}s:val`]));
      const zcard = Number(await c.sendCommand(['ZCARD', `${p}s:exp`]));
      assert.equal(hlen, zcard, 'no orphaned values');
      assert.equal(hlen, 1, 'all expired members removed by the writes');
      assert.ok(Number(await c.sendCommand(['ZCARD', `${p}s:log`])) <= 10_000, 'the journal is bounded');
    } finally {
      c.destroy();
      await cleanup(p);
    }
  });
});
