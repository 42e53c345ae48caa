/**
 * A Redis that comes back with an older or empty journaled set (restarted empty, restored from an
 * RDB, failed over to a lagging replica) and is then written to until its version passes the one a
 * node holds: the node's catch-up must be refused (the journal's chain does not reach its version),
 * so it reads everything, never keeping entries that no longer exist or missing new ones.
 */
import assert from 'node:assert/strict';
import { RedisStore } from '../../plugins/shield/core/redis-store';
import { SharedLists } from '../../plugins/shield/core/list-entries';
import { redisClient as client, type TestRedisClient } from '../helpers/redis-client';


describe('journaled set after Redis lost its recent history (restarted empty, restored, failed over)', function () {
  this.timeout(20000);
  const prefix = `shield-review12:${process.pid}:journal:`;
  let c: TestRedisClient;
  before(async () => {
    c = client();
    await c.connect();
  });
  after(async () => {
    const keys = (await c.sendCommand(['KEYS', `${prefix}*`])) as string[];
    if (keys.length) await c.sendCommand(['DEL', ...keys]);
    c.destroy();
  });

  it('Redis restarted EMPTY, then the fleet writes until the version passes the node\'s: the node keeps a gone entry and misses a new one', async () => {
    const store = new RedisStore(c, prefix + 'a:');
    const lists = new SharedLists(store);
    await lists.add({ list: 'block', kind: 'ip', value: '198.18.0.1', ttlSec: null, reason: 'old', source: 'cli' });
    await lists.add({ list: 'block', kind: 'ip', value: '198.18.0.2', ttlSec: null, reason: 'old', source: 'cli' });
    // the node reads everything: it now holds version V with 198.18.0.1 and .2
    const snap = await lists.snapshot();
    const V = snap.version;
    // Redis restarts empty (all of this set's keys gone)
    const keys = (await c.sendCommand(['KEYS', `${prefix}a:*`])) as string[];
    await c.sendCommand(['DEL', ...keys]);
    // the fleet writes again: first a new block, then temporary blocks (shield.limit) until the version passes V
    await lists.add({ list: 'block', kind: 'ip', value: '198.18.9.9', ttlSec: null, reason: 'new after restart', source: 'cli' });
    let writes = 1;
    for (;;) {
      const ver = Number(await c.sendCommand(['GET', `${prefix}a:blocklist:entries:ver`]).catch(() => 0)) || Number((await store.setSnapshot('entries')).version);
      if (ver > V) break;
      await lists.blockTemporarily(`198.51.100.${writes}`, 600, 'temp', 'limit');
      writes++;
    }
    const ch = await lists.changes(V, 5000);
    console.log(`    node held version ${V}; after ${writes} writes post-restart the catch-up answers: ${JSON.stringify(ch && { version: ch.version, added: ch.added.map((e) => e.value), removed: ch.removed.map((e) => e.value) })}`);
    // what the node would hold after applying it
    const nodeHas = new Set(snap.entries.map((e) => e.value));
    if (ch) {
      for (const r of ch.removed) nodeHas.delete(r.value);
      for (const e of ch.added) nodeHas.add(e.value);
    }
    const truth = new Set((await lists.snapshot()).entries.map((e) => e.value));
    console.log(`    node: ${[...nodeHas].sort().join(' ')}\n    Redis: ${[...truth].sort().join(' ')}`);
    assert.equal(ch, null, 'a set younger than the reader\'s version must make the reader read everything');
  });
});
