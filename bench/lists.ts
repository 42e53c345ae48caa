/**
 * npm run bench:lists -- [--entries N]
 *
 * The blocklist's index at size: N IP/CIDR entries and N domain entries (default 100,000 each).
 * Prints build time, heap used by the index, and the time per lookup (IP hits and misses, names
 * with a few labels, hits and misses), and the cost of a full reload from Redis at that size.
 */
import { EntryIndex, Lists, checkHelo } from '../plugins/shield/checks/list-match';
import { SharedLists, parseEntryValue, type ListEntry } from '../plugins/shield/core/list-entries';
import { parseIp } from '../plugins/shield/core/net';
import { ResilientStore, createRedisClient } from '../plugins/shield/core/shared-store';
import { domainEntries, ipEntries, randomIpv4, randomName, rng } from './lists-data';

const gc = (globalThis as { gc?: () => void }).gc;

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

function heap(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

function entriesOf(texts: string[], list: 'block' | 'allow' = 'block'): ListEntry[] {
  return texts.map((t) => ({ list, ...parseEntryValue(t), reason: '', source: 'bench', addedAt: null, expiresAt: null }));
}

/** ns per call of fn over the inputs, best of 5 rounds */
function time(inputs: unknown[], fn: (x: never) => unknown): number {
  let best = Infinity;
  let sink = 0;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    for (const x of inputs) if (fn(x as never)) sink++;
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / inputs.length);
  }
  if (sink < 0) console.log(sink);
  return best;
}

async function main(): Promise<void> {
  const n = arg('entries', 100_000);
  if (!gc) console.log('(run with node --expose-gc for exact heap numbers)');
  const ipTexts = ipEntries(n);
  const nameTexts = domainEntries(n);
  const hEntries = heap();
  const ipE = entriesOf(ipTexts);
  const nameE = entriesOf(nameTexts);

  const h0 = heap();
  const t0 = process.hrtime.bigint();
  const index = new EntryIndex([...ipE, ...nameE]);
  const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const h1 = heap();
  const lists = new Lists([index]);
  const now = Date.now();

  const r = rng(7);
  const hitIps = Array.from({ length: 200_000 }, () => parseIp((ipTexts[Math.floor(r() * n)] as string).split('/')[0] as string));
  const missIps = Array.from({ length: 200_000 }, () => parseIp(`198.18.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}`));
  const missIp6 = Array.from({ length: 200_000 }, () => parseIp(`2001:2::${Math.floor(r() * 65536).toString(16)}`));
  const hitNames = Array.from({ length: 200_000 }, () => `mx${Math.floor(r() * 9)}.${nameTexts[Math.floor(r() * n)]}`);
  const missNames = Array.from({ length: 200_000 }, () => `mail.${randomName(r, 2)}`);
  const rawIps = Array.from({ length: 200_000 }, () => randomIpv4(r).join('.'));

  const rows: Array<[string, number]> = [
    ['ip lookup, hit (parsed IPv4/IPv6)', time(hitIps, (ip) => lists.ip('block', ip, now))],
    ['ip lookup, miss (IPv4)', time(missIps, (ip) => lists.ip('block', ip, now))],
    ['ip lookup, miss (IPv6)', time(missIp6, (ip) => lists.ip('block', ip, now))],
    ['ip lookup incl. parsing the address text', time(rawIps, (ip: string) => lists.ip('block', parseIp(ip) as never, now))],
    ['name lookup, hit (3 labels)', time(hitNames, (name: string) => checkHelo(name, lists, now).verdict === 'block')],
    ['name lookup, miss (4 labels)', time(missNames, (name: string) => checkHelo(name, lists, now).verdict === 'block')],
  ];

  console.log(`\nshield.blocklist index: ${n.toLocaleString()} IP/CIDR + ${n.toLocaleString()} domain entries`);
  console.log(`  build          ${buildMs.toFixed(0)} ms`);
  console.log(`  heap, index    ${((h1 - h0) / 1048576).toFixed(1)} MB (${((h1 - h0) / (2 * n)).toFixed(0)} bytes per entry)`);
  console.log(`  heap, total    ${((h1 - hEntries) / 1048576).toFixed(1)} MB with the entry objects (${((h1 - hEntries) / (2 * n)).toFixed(0)} bytes per entry)`);
  for (const [what, ns] of rows) console.log(`  ${what.padEnd(42)} ${(ns / 1000).toFixed(2)} µs`);

  // the shared entries at this size, read the way shield.blocklist reads them: through the suite's
  // store (ResilientStore.shared, with the snapshot's own timeout), in full once, then one change
  const client = createRedisClient({ socket: { host: '127.0.0.1', port: 6379 } }, { reconnect: false });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch {
    console.log('  (no Redis on 127.0.0.1:6379: reads from Redis not measured)');
    return;
  }
  client.destroy?.();
  const prefix = `shield-bench:${process.pid}:`;
  const store = new ResilientStore({ warn: (m) => console.log(`  store: ${m}`), info: () => undefined }, { prefix, timeoutMs: 250 });
  store.connect({ socket: { host: '127.0.0.1', port: 6379 } });
  if (!(await store.whenUp(3000))) {
    console.log('  (Redis did not answer: reads from Redis not measured)');
    return;
  }
  try {
    const all = [...ipE, ...nameE];
    const tw = process.hrtime.bigint();
    for (let i = 0; i < all.length; i += 1000) {
      const redis = await store.shared((st) => Promise.all(all.slice(i, i + 1000).map((e) => st.setPut('blocklist:entries', `${e.list}|${e.kind}|${e.value}`, '{"reason":"","source":"bench"}', null))), 30_000);
      if (!redis) throw new Error('Redis write failed');
    }
    console.log(`  write ${all.length.toLocaleString()} shared entries: ${(Number(process.hrtime.bigint() - tw) / 1e6).toFixed(0)} ms`);

    const t2 = process.hrtime.bigint();
    const snap = await store.shared((st) => new SharedLists(st).snapshot(), 15_000);
    if (!snap) throw new Error('snapshot failed');
    const fetchMs = Number(process.hrtime.bigint() - t2) / 1e6;
    const t3 = process.hrtime.bigint();
    // the way a node rebuilds it: in chunks, measuring the longest stretch the event loop was held
    let longest = 0;
    let last = process.hrtime.bigint();
    const tick = setInterval(() => {
      const t = process.hrtime.bigint();
      longest = Math.max(longest, Number(t - last) / 1e6);
      last = t;
    }, 1);
    const ix = await EntryIndex.build(snap.value.entries);
    clearInterval(tick);
    const rebuildMs = Number(process.hrtime.bigint() - t3) / 1e6;
    console.log(`  full read (${snap.value.entries.length.toLocaleString()} entries, in steps): fetch ${fetchMs.toFixed(0)} ms + index ${rebuildMs.toFixed(0)} ms (event loop held at most ${longest.toFixed(0)} ms at a time)`);

    // one `block add` on another node, then this node catches up
    await new SharedLists(store).add({ list: 'block', kind: 'ip', value: '203.0.113.99/32', ttlSec: null, reason: 'bench', source: 'bench' });
    const t4 = process.hrtime.bigint();
    const ch = await store.shared((st) => new SharedLists(st).changes(snap.value.version));
    if (!ch?.value) throw new Error('changes failed');
    for (const e of ch.value.added) ix.add(e);
    for (const r of ch.value.removed) ix.remove(r.list, r.kind, r.value);
    const incMs = Number(process.hrtime.bigint() - t4) / 1e6;
    const t5 = process.hrtime.bigint();
    const idle = await store.shared((st) => new SharedLists(st).changes(ch.value?.version ?? 0));
    const idleMs = Number(process.hrtime.bigint() - t5) / 1e6;
    console.log(`  one change caught up: ${incMs.toFixed(2)} ms (${ch.value.added.length} added, one round trip); nothing changed: ${idleMs.toFixed(2)} ms (${idle?.value ? `${idle.value.added.length} added` : 'n/a'})`);
  } finally {
    const c2 = createRedisClient({ socket: { host: '127.0.0.1', port: 6379 } }, { reconnect: false });
    await c2.connect();
    for (;;) {
      const keys = (await c2.sendCommand(['KEYS', `${prefix}*`])) as string[];
      if (!keys.length) break;
      await c2.sendCommand(['DEL', ...keys]);
    }
    c2.destroy?.();
    await store.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
