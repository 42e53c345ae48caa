/**
 * Journaled sets, on both backends: a reader holding version N gets exactly the members changed
 * since N in one step; a reader too far behind, or ahead of a store that restarted empty, is told to
 * read everything; a snapshot plus the changes made during it is exact.
 */
import assert from 'node:assert/strict';
import { RedisStore } from '../../plugins/shield/core/redis-store';
import { MemoryStore, SET_JOURNAL_MAX, type Store } from '../../plugins/shield/core/store';
import { SharedLists } from '../../plugins/shield/core/list-entries';
import { redisClient as client, dropKeys, type TestRedisClient as Client } from '../helpers/redis-client';


let n = 0;
const backends: Array<[string, () => Promise<{ store: Store; done(): Promise<void>; redis?: Client; prefix?: string }>]> = [
  ['memory', async () => ({ store: new MemoryStore(Date.now, 0), done: async () => undefined })],
  [
    'redis',
    async () => {
      const c = client();
      await c.connect();
      const prefix = `shield-test:${process.pid}:journal${++n}:`;
      return {
        store: new RedisStore(c, prefix),
        redis: c,
        prefix,
        done: async () => {
          await dropKeys(c, prefix);
          c.destroy();
        },
      };
    },
  ],
];

for (const [name, make] of backends) {
  describe(`journaled sets (${name})`, function () {
    this.timeout(30000);

    it('changes since a version: added, changed and removed members; nothing when nothing changed', async () => {
      const b = await make();
      try {
        const s = b.store;
        await s.setPut('k', 'a', '1', null);
        await s.setPut('k', 'b', '1', null);
        const v1 = (await s.setSnapshot('k')).version;
        assert.ok(v1 > 0);
        assert.deepEqual(await s.setChanges('k', v1, 100), { version: v1, changes: [] });
        await s.setPut('k', 'a', '2', 60);
        await s.setDelete('k', 'b');
        await s.setPut('k', 'c', '3', null);
        const ch = await s.setChanges('k', v1, 100);
        assert.ok(ch && ch.version > v1);
        const byMember = new Map(ch.changes.map((c) => [c.member, c.entry]));
        assert.equal(byMember.get('a')?.value, '2');
        assert.ok((byMember.get('a')?.expiresAt ?? 0) > Date.now());
        assert.equal(byMember.get('b'), null);
        assert.equal(byMember.get('c')?.value, '3');
        assert.equal(ch.changes.length, 3);
      } finally {
        await b.done();
      }
    });

    it('a reader too far behind, ahead of the store (a restarted Redis), or with more changes than it wants, reads everything', async () => {
      const b = await make();
      try {
        const s = b.store;
        await s.setPut('k', 'a', '1', null);
        const v1 = (await s.setSnapshot('k')).version;
        assert.equal(await s.setChanges('k', v1 + 1, 100), null, 'ahead of the store');
        for (let i = 0; i < 5; i++) await s.setPut('k', `m${i}`, 'x', null);
        assert.equal(await s.setChanges('k', v1, 3), null, 'more changes than max');
        assert.ok(await s.setChanges('k', v1, 5));
      } finally {
        await b.done();
      }
    });

    it(`the journal keeps the last ${SET_JOURNAL_MAX.toLocaleString()} changes; a reader from before them is told to read everything`, async () => {
      const b = await make();
      try {
        const s = b.store;
        await s.setPut('k', 'first', '1', null);
        const v1 = (await s.setSnapshot('k')).version;
        for (let i = 0; i < SET_JOURNAL_MAX + 10; i += 500) await Promise.all(Array.from({ length: 500 }, (_, j) => s.setPut('k', `m${i + j}`, 'x', null)));
        assert.equal(await s.setChanges('k', v1, 1_000_000), null);
        const snap = await s.setSnapshot('k');
        assert.equal(snap.entries.length, 1 + Math.ceil((SET_JOURNAL_MAX + 10) / 500) * 500);
        assert.deepEqual(await s.setChanges('k', snap.version, 10), { version: snap.version, changes: [] });
      } finally {
        await b.done();
      }
    });

    it('shared lists: one block add reaches a reader as one change, not a reload', async () => {
      const b = await make();
      try {
        const lists = new SharedLists(b.store);
        await lists.add({ list: 'block', kind: 'ip', value: '198.51.100.0/24', ttlSec: null, reason: 'r', source: 't' });
        const snap = await lists.snapshot();
        await lists.add({ list: 'block', kind: 'domain', value: 'spam.example.net', ttlSec: 60, reason: 'r', source: 't' });
        await lists.remove('block', 'ip', '198.51.100.0/24');
        const ch = await lists.changes(snap.version);
        assert.ok(ch);
        assert.deepEqual(
          ch.added.map((e) => `${e.kind}:${e.value}`),
          ['domain:spam.example.net'],
        );
        assert.deepEqual(ch.removed, [{ list: 'block', kind: 'ip', value: '198.51.100.0/24' }]);
      } finally {
        await b.done();
      }
    });
  });
}

describe('entry index: changes applied in place', () => {
  it('remove takes out exactly one entry; a range removed stops matching, a wider one still matches', async () => {
    const { EntryIndex } = await import('../../plugins/shield/checks/list-match');
    const { parseIp } = await import('../../plugins/shield/core/net');
    const e = (value: string, kind: 'ip' | 'domain' = 'ip') => ({ list: 'block' as const, kind, value, reason: '', source: 't', addedAt: null, expiresAt: null });
    const ix = new EntryIndex([e('198.51.100.0/24'), e('198.51.100.7/32'), e('spam.example.net', 'domain')]);
    const ip = parseIp('198.51.100.7');
    assert.ok(ip);
    assert.equal(ix.ip('block', ip, 0)?.entry.value, '198.51.100.7/32');
    assert.equal(ix.remove('block', 'ip', '198.51.100.7/32'), true);
    assert.equal(ix.remove('block', 'ip', '198.51.100.7/32'), false);
    assert.equal(ix.ip('block', ip, 0)?.entry.value, '198.51.100.0/24');
    assert.equal(ix.remove('block', 'ip', '198.51.100.0/24'), true);
    assert.equal(ix.ip('block', ip, 0), null);
    assert.equal(ix.remove('block', 'domain', 'spam.example.net'), true);
    assert.equal(ix.name('block', 'domain', 'mx.spam.example.net', 0), null);
    assert.equal(ix.size, 0);
  });
});
