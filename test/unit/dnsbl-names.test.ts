/**
 * shield.dnsbl's bounds on names chosen by the client: the per-connection name budget and the
 * per-client budget of new names written to the shared cache (issue 12, defect 5).
 */
import assert from 'node:assert/strict';
import { parseDnsblConfig } from '../../plugins/shield/checks/dnsbl-config';
import { NameBudget, ZoneLookups, domainLookups, ipLookups, nameBudgetKey } from '../../plugins/shield/checks/dnsbl-lookup';
import { parseIp, type ParsedIp } from '../../plugins/shield/core/net';
import { MemoryStore } from '../../plugins/shield/core/store';

const cfg = parseDnsblConfig({
  main: { zones: 'bl, dbl', cache_names: '3/1h' },
  bl: { zone: 'bl.example.net' },
  dbl: { type: 'domain', zone: 'dbl.example.net' },
});

function setup() {
  const asked: string[] = [];
  const store = new MemoryStore(Date.now, 0);
  const lookups = new ZoneLookups({
    resolver: {
      query: async (name) => {
        asked.push(name);
        return { records: name === 'listed.example.dbl.example.net' ? ['127.0.0.2'] : [], ttl: 300 };
      },
    },
    store,
    log: { error: () => undefined },
    settings: () => cfg.main,
    disabled: () => false,
  });
  const cached = async (item: string) => (await store.cacheGetMany([`dnsbl:a:dbl.example.net:${item}`]))[0];
  return { asked, store, lookups, cached };
}

const settle = () => new Promise((r) => setTimeout(r, 10));

describe('dnsbl: names chosen by the client', () => {
  it('defaults: max_names 10, cache_names 200 per hour (per netblock); off disables both', () => {
    const d = parseDnsblConfig({ main: {} });
    assert.equal(d.main.max_names, 10);
    assert.deepEqual(d.main.cache_names, { limit: 200, windowSec: 3600 });
    const off = parseDnsblConfig({ main: { max_names: 'off', cache_names: 'off' } });
    assert.equal(off.main.max_names, 0);
    assert.equal(off.main.cache_names, null);
  });

  it('NameBudget: distinct names up to max, a name already counted is free, 0 = no cap', () => {
    const b = new NameBudget();
    const l = (name: string) => domainLookups(cfg.zones, 'mail_from', name);
    assert.equal(b.split(l('a.example'), 2).within.length, 1);
    assert.equal(b.split(l('b.example'), 2).within.length, 1);
    const third = b.split(l('c.example'), 2);
    assert.deepEqual([third.within.length, third.over.map((o) => o.item)], [0, ['c.example']]);
    assert.equal(b.split(l('x.a.example'), 2).within.length, 1, 'the same registered domain is the same name');
    assert.equal(b.size, 2);
    assert.equal(new NameBudget().split([...l('a.example'), ...l('b.example'), ...l('c.example')], 0).within.length, 3);
  });

  it('cacheOnly: a miss asks no DNS and gives no result; a hit is read', async () => {
    const { asked, lookups } = setup();
    assert.deepEqual(await lookups.all(domainLookups(cfg.zones, 'mail_from', 'listed.example'), { cacheOnly: true }), []);
    assert.deepEqual(asked, []);
    await lookups.all(domainLookups(cfg.zones, 'mail_from', 'listed.example'));
    await settle();
    const [hit] = await lookups.all(domainLookups(cfg.zones, 'mail_from', 'listed.example'), { cacheOnly: true });
    assert.equal(hit?.outcome.status, 'listed');
    assert.equal(asked.length, 1);
  });

  it('cache_names: one client writes at most 3 new names per window to the shared cache; addresses and other clients are not held back', async () => {
    const { store, lookups, cached } = setup();
    for (let i = 0; i < 5; i++) await lookups.all(domainLookups(cfg.zones, 'mail_from', `n${i}.example`), { client: '198.51.100.7' });
    await settle();
    const written = await Promise.all([0, 1, 2, 3, 4].map((i) => cached(`n${i}.example`)));
    assert.deepEqual(written.map((w) => w !== null), [true, true, true, false, false]);
    assert.equal(await store.getCount(nameBudgetKey('198.51.100.7')), 5);
    // an address answer is always written; another client has its own budget; no client = no budget
    await lookups.all(ipLookups(cfg.zones, parseIp('198.51.100.7') as ParsedIp), { client: '198.51.100.7' });
    await lookups.all(domainLookups(cfg.zones, 'mail_from', 'other.example'), { client: '198.51.100.8' });
    await lookups.all(domainLookups(cfg.zones, 'mail_from', 'free.example'));
    await settle();
    assert.notEqual((await store.cacheGetMany(['dnsbl:a:bl.example.net:198.51.100.7']))[0], null);
    assert.notEqual(await cached('other.example'), null);
    assert.notEqual(await cached('free.example'), null);
  });

  it('cache_names: a batch past the budget writes the names that fit', async () => {
    const { lookups, cached } = setup();
    const batch = ['a', 'b', 'c', 'd', 'e'].flatMap((n) => domainLookups(cfg.zones, 'rdns', `${n}.example`));
    await lookups.all(batch, { client: '2001:db8::/64' });
    await settle();
    const written = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => cached(`${n}.example`)));
    assert.equal(written.filter((w) => w !== null).length, 3);
  });
});
