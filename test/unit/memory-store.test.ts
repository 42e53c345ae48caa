/** The memory store on a fake clock: exact expiry edges, admit's refusals, and the sweep. */
import assert from 'node:assert/strict';
import { MemoryStore, gcra, systemClock } from '../../plugins/shield/core/store';

function clocked() {
  const t = { now: 1_000_000 };
  const st = new MemoryStore(() => t.now, 0);
  return { t, st };
}

/** the sizes of the store's maps, to see what the sweep keeps */
function sizes(st: MemoryStore): Record<string, number> {
  const m = st as unknown as Record<string, Map<string, unknown>>;
  return { counters: m.counters!.size, cache: m.cache!.size, leases: m.leases!.size, rates: m.rates!.size, sets: m.sets!.size };
}

describe('memory store: expiry to the millisecond', () => {
  it('a counter lives exactly its TTL', async () => {
    const { t, st } = clocked();
    assert.equal(await st.incr('c', 2, 10), 2);
    t.now += 9_999;
    assert.equal(await st.getCount('c'), 2);
    assert.equal(await st.incr('c', 3, 100), 5, 'the TTL is not extended');
    t.now += 1;
    assert.equal(await st.getCount('c'), 0);
    assert.equal(await st.incr('c', 1, 10), 1, 'a new counter after expiry');
  });

  it('a cache entry lives exactly its TTL; a TTL of 0 or less is not written', async () => {
    const { t, st } = clocked();
    await st.cacheSetMany([
      { key: 'a', value: 'x', ttlSec: 2 },
      { key: 'z', value: 'no', ttlSec: 0 },
      { key: 'n', value: 'no', ttlSec: -1 },
    ]);
    t.now += 1_999;
    assert.deepEqual(await st.cacheGetMany(['a', 'z', 'n']), ['x', null, null]);
    t.now += 1;
    assert.deepEqual(await st.cacheGetMany(['a']), [null]);
  });

  it('a lease lives exactly its TTL; a refresh extends it from now; a release frees the slot', async () => {
    const { t, st } = clocked();
    assert.deepEqual(await st.leaseAcquire('l', 'a', 10, 1), { granted: true, count: 1 });
    assert.deepEqual(await st.leaseAcquire('l', 'b', 10, 1), { granted: false, count: 1 });
    t.now += 9_999;
    assert.equal((await st.leaseAcquire('l', 'b', 10, 1)).granted, false);
    await st.leaseRefreshMany(['l'], 'a', 10);
    t.now += 9_999;
    assert.equal((await st.leaseAcquire('l', 'b', 10, 1)).granted, false, 'refreshed 9.999 s ago');
    t.now += 1;
    assert.deepEqual(await st.leaseAcquire('l', 'b', 10, 1), { granted: true, count: 1 });
    await st.leaseReleaseMany(['l', 'never-held'], 'b');
    assert.deepEqual(await st.leaseAcquire('l', 'c', 10, 1), { granted: true, count: 1 });
  });

  it('a set member lives exactly its TTL; without one it stays', async () => {
    const { t, st } = clocked();
    await st.setPut('s', 'm', 'v', 5);
    await st.setPut('s', 'p', 'forever', null);
    assert.deepEqual(await st.setEntries('s'), [
      { member: 'm', value: 'v', expiresAt: 1_005_000 },
      { member: 'p', value: 'forever', expiresAt: null },
    ]);
    t.now += 4_999;
    assert.equal((await st.setEntries('s')).length, 2);
    t.now += 1;
    assert.deepEqual(await st.setEntries('s'), [{ member: 'p', value: 'forever', expiresAt: null }]);
    assert.deepEqual(await st.setEntries('nothing'), []);
    assert.equal(await st.setDelete('nothing', 'm'), false);
  });

  it('deleting a member that just expired says it was not there', async () => {
    const { t, st } = clocked();
    await st.setPut('s', 'm', 'v', 1);
    t.now += 999;
    await st.setPut('s', 'k', 'v', 1);
    assert.equal(await st.setDelete('s', 'm'), true);
    t.now += 1000;
    assert.equal(await st.setDelete('s', 'k'), false);
    await st.setPut('s', 'k', 'v2', 1);
    assert.deepEqual(await st.setEntries('s'), [{ member: 'k', value: 'v2', expiresAt: t.now + 1000 }], 'put again after expiry');
  });
});

describe('memory store: admit', () => {
  it('names the first lease that refused, by index; nothing is taken', async () => {
    const { st } = clocked();
    await st.leaseAcquire('full', 'other', 60, 1);
    const r = await st.admit('me', [{ key: 'room', max: 5 }, { key: 'full', max: 1 }], 60, [{ key: 'rate', limit: 1, windowSec: 60 }]);
    assert.deepEqual(r, { admitted: false, refused: { kind: 'lease', index: 1 }, retryAfterMs: 0 });
    assert.equal((await st.leaseAcquire('room', '(count)', 1, 0)).count, 0, 'the lease in "room" was not taken');
    assert.equal((await st.admit('me', [], 60, [{ key: 'rate', limit: 1, windowSec: 60 }])).admitted, true, 'the rate was not counted');
  });

  it('a holder is admitted again into a full lease key', async () => {
    const { st } = clocked();
    assert.equal((await st.admit('me', [{ key: 'one', max: 1 }], 60, [])).admitted, true);
    assert.equal((await st.admit('me', [{ key: 'one', max: 1 }], 60, [])).admitted, true);
    assert.equal((await st.admit('you', [{ key: 'one', max: 1 }], 60, [])).admitted, false);
    assert.equal((await st.admit('x', [{ key: 'zero', max: 0 }], 60, [])).admitted, false, 'max 0 admits nobody');
  });

  it('names the first rate that refused, by index, with the wait; the rates before it are not counted', async () => {
    const { t, st } = clocked();
    const rates = [
      { key: 'loose', limit: 100, windowSec: 60 },
      { key: 'tight', limit: 2, windowSec: 10 },
    ];
    assert.equal((await st.admit('a', [], 60, rates)).admitted, true);
    assert.equal((await st.admit('a', [], 60, rates)).admitted, true);
    const r = await st.admit('a', [{ key: 'l', max: 9 }], 60, rates);
    assert.deepEqual(r, { admitted: false, refused: { kind: 'rate', index: 1 }, retryAfterMs: 5000 });
    assert.equal((await st.leaseAcquire('l', '(count)', 1, 0)).count, 0, 'no lease taken by a refused admit');
    // 'loose' counted the 2 admitted events only: 98 more fit in its burst
    let n = 0;
    while ((await st.admit('a', [], 60, [rates[0]!])).admitted) n++;
    assert.equal(n, 98);
    t.now += 4_999;
    assert.deepEqual(await st.admit('a', [], 60, [rates[1]!]), { admitted: false, refused: { kind: 'rate', index: 0 }, retryAfterMs: 1 });
    t.now += 1;
    assert.equal((await st.admit('a', [], 60, [rates[1]!])).admitted, true);
  });

  it('admitted leases live leaseTtlSec; rate state lives until its bucket is full again', async () => {
    const { t, st } = clocked();
    await st.admit('a', [{ key: 'l', max: 1 }], 30, [{ key: 'r', limit: 1, windowSec: 20 }]);
    t.now += 19_999;
    assert.equal((await st.admit('b', [], 30, [{ key: 'r', limit: 1, windowSec: 20 }])).admitted, false);
    t.now += 1;
    assert.equal((await st.admit('b', [], 30, [{ key: 'r', limit: 1, windowSec: 20 }])).admitted, true);
    t.now += 9_999;
    assert.equal((await st.admit('b', [{ key: 'l', max: 1 }], 30, [])).admitted, false, 'the lease of a is live for 30 s');
    t.now += 1;
    assert.equal((await st.admit('b', [{ key: 'l', max: 1 }], 30, [])).admitted, true);
  });
});

describe('memory store: the sweep', () => {
  it('drops what has expired, and empty lease and set keys, so a long-running node does not grow', async () => {
    const { t, st } = clocked();
    await st.incr('c1', 1, 1);
    await st.incr('c2', 1, 100);
    await st.cacheSetMany([
      { key: 'k1', value: 'v', ttlSec: 1 },
      { key: 'k2', value: 'v', ttlSec: 100 },
    ]);
    await st.admit('a', [{ key: 'l1', max: 5 }], 1, [{ key: 'r1', limit: 1, windowSec: 1 }]);
    await st.admit('a', [{ key: 'l2', max: 5 }], 100, [{ key: 'r2', limit: 1, windowSec: 100 }]);
    await st.leaseAcquire('l2', 'short', 1, 5);
    await st.setPut('s1', 'm', 'v', 1);
    await st.setPut('s2', 'm', 'v', 100);
    await st.setPut('s2', 'short', 'v', 1);
    await st.setPut('s3', 'm', 'v', null);
    assert.deepEqual(sizes(st), { counters: 2, cache: 2, leases: 2, rates: 2, sets: 3 });
    t.now += 999;
    st.sweep();
    assert.deepEqual(sizes(st), { counters: 2, cache: 2, leases: 2, rates: 2, sets: 3 }, 'nothing has expired yet');
    t.now += 1;
    st.sweep();
    assert.deepEqual(sizes(st), { counters: 1, cache: 1, leases: 1, rates: 1, sets: 2 });
    assert.equal((await st.leaseAcquire('l2', '(count)', 1, 0)).count, 1, 'the expired lease in a live key is gone');
    assert.deepEqual((await st.setEntries('s2')).map((e) => e.member), ['m']);
  });

  it('runs on its own every sweepEverySec, unref()ed; close() stops it; 0 = never', async () => {
    const g = globalThis as unknown as Record<string, unknown>;
    const saved = { setInterval: g.setInterval, clearInterval: g.clearInterval };
    const made: Array<{ ms: number; fn: () => void; unrefed: boolean; cleared: boolean }> = [];
    g.setInterval = (fn: () => void, ms: number) => {
      const t = { ms, fn, unrefed: false, cleared: false };
      made.push(t);
      return { unref: () => ((t.unrefed = true), t), t };
    };
    g.clearInterval = (h: { t: { cleared: boolean } }) => {
      h.t.cleared = true;
    };
    let st: MemoryStore;
    let none: MemoryStore;
    try {
      st = new MemoryStore(() => 0, 30);
      none = new MemoryStore(() => 0, 0);
      st.close();
      st.close();
    } finally {
      Object.assign(g, saved);
    }
    assert.deepEqual(made.map((m) => [m.ms, m.unrefed, m.cleared]), [[30_000, true, true]]);
    none.close();
    const d = new MemoryStore();
    assert.equal(d.backend, 'memory');
    d.close();
  });

  it('the system clock is Date.now', () => {
    const a = Date.now();
    const c = systemClock();
    assert.ok(c >= a && c <= Date.now());
  });
});

describe('gcra: the edge of the window', () => {
  it('the last event that fits, and the wait rounded up to the millisecond', () => {
    assert.deepEqual(gcra(1_010_000, 1_000_000, 10, 10_000), { ok: false, tat: 1_010_000, retryAfterMs: 1000 });
    assert.deepEqual(gcra(1_009_000, 1_000_000, 10, 10_000), { ok: true, tat: 1_010_000, retryAfterMs: 0 });
    assert.deepEqual(gcra(1_010_000, 1_000_000, 3, 10_000), { ok: false, tat: 1_010_000, retryAfterMs: 3334 });
  });
});
