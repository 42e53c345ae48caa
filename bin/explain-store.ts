/**
 * The store `haraka-shield explain` runs the plugins on: it reads the instance's real store and
 * writes nowhere a running Haraka or an operator would look.
 *
 * Copy on write: before an operation changes a key (a lease, a rate, a counter, a cache entry), the
 * real key is copied, with its TTL, to the same key under a scratch prefix
 * (`[store] prefix` + `explain:<random>:`); the operation, and every later read of that key, use the
 * copy. The operations are RedisStore's own Lua scripts, so a limit is judged exactly as the server
 * judges it, on the fleet's current leases and rates, without taking anything from them. Set members
 * (block entries that plugins add with `blockTemporarily`) are not written at all: they are listed in
 * `withheld`. `discard()` deletes the copies; if explain is killed first they expire with their TTLs.
 */
import { randomBytes } from 'node:crypto';
import { RedisStore, type RedisLike } from '../plugins/shield/core/redis-store';
import type { ResilientStore } from '../plugins/shield/core/shared-store';
import type { AdmitResult, LeaseResult, LeaseSpec, RateSpec, SetChange, SetEntry, SetSnapshot, Store } from '../plugins/shield/core/store';

export class ScratchStore implements Store {
  readonly backend = 'redis' as const;
  readonly scratchPrefix: string;
  /** writes that were not made (set members), described for the report */
  readonly withheld: string[] = [];
  private readonly real: RedisStore;
  private readonly scratch: RedisStore;
  /** relative key -> its copy (done or under way); the key lives in scratch from then on */
  private readonly copies = new Map<string, Promise<void>>();

  constructor(
    private readonly client: RedisLike,
    readonly prefix: string,
    tag = randomBytes(4).toString('hex'),
  ) {
    this.scratchPrefix = `${prefix}explain:${tag}:`;
    this.real = new RedisStore(client, prefix);
    this.scratch = new RedisStore(client, this.scratchPrefix);
  }

  /** copy `keys` to scratch once each (COPY keeps the TTL; a missing key stays missing) */
  private async own(keys: readonly string[]): Promise<void> {
    await Promise.all(
      keys.map((k) => {
        let p = this.copies.get(k);
        if (!p) {
          p = this.client.sendCommand(['COPY', this.prefix + k, this.scratchPrefix + k, 'REPLACE']).then(() => undefined);
          this.copies.set(k, p);
        }
        return p;
      }),
    );
  }

  /** a key written to without reading it first (a cache SET): no copy needed */
  private claim(keys: readonly string[]): void {
    for (const k of keys) if (!this.copies.has(k)) this.copies.set(k, Promise.resolve());
  }

  private async readerOf(key: string): Promise<RedisStore> {
    const p = this.copies.get(key);
    if (!p) return this.real;
    await p;
    return this.scratch;
  }

  async incr(key: string, by: number, ttlSec: number): Promise<number> {
    await this.own([key]);
    return this.scratch.incr(key, by, ttlSec);
  }

  async getCount(key: string): Promise<number> {
    return (await this.readerOf(key)).getCount(key);
  }

  async leaseAcquire(key: string, id: string, ttlSec: number, max: number): Promise<LeaseResult> {
    await this.own([key]);
    return this.scratch.leaseAcquire(key, id, ttlSec, max);
  }

  async admit(id: string, leases: readonly LeaseSpec[], leaseTtlSec: number, rates: readonly RateSpec[]): Promise<AdmitResult> {
    await this.own([...leases.map((l) => l.key), ...rates.map((r) => r.key)]);
    return this.scratch.admit(id, leases, leaseTtlSec, rates);
  }

  async leaseRefreshMany(keys: readonly string[], id: string, ttlSec: number): Promise<void> {
    await this.own(keys);
    return this.scratch.leaseRefreshMany(keys, id, ttlSec);
  }

  async leaseReleaseMany(keys: readonly string[], id: string): Promise<void> {
    await this.own(keys);
    return this.scratch.leaseReleaseMany(keys, id);
  }

  async setPut(key: string, member: string, value: string, ttlSec: number | null): Promise<void> {
    this.withheld.push(`${key} ${member}${ttlSec === null ? '' : ` (ttl ${ttlSec}s)`}: ${value}`);
  }

  async setDelete(key: string, member: string): Promise<boolean> {
    this.withheld.push(`${key} ${member}: delete`);
    return false;
  }

  setEntries(key: string): Promise<SetEntry[]> {
    return this.real.setEntries(key);
  }
  setSnapshot(key: string): Promise<SetSnapshot> {
    return this.real.setSnapshot(key);
  }
  setChanges(key: string, since: number, max: number): Promise<{ version: number; changes: SetChange[] } | null> {
    return this.real.setChanges(key, since, max);
  }

  async cacheGetMany(keys: readonly string[]): Promise<Array<string | null>> {
    const readers = await Promise.all(keys.map((k) => this.readerOf(k)));
    const fromReal = keys.filter((_, i) => readers[i] === this.real);
    const fromScratch = keys.filter((_, i) => readers[i] === this.scratch);
    const [a, b] = await Promise.all([this.real.cacheGetMany(fromReal), this.scratch.cacheGetMany(fromScratch)]);
    let ia = 0;
    let ib = 0;
    return readers.map((r) => (r === this.real ? (a[ia++] ?? null) : (b[ib++] ?? null)));
  }

  async cacheSetMany(entries: ReadonlyArray<{ key: string; value: string; ttlSec: number }>): Promise<void> {
    this.claim(entries.map((e) => e.key));
    return this.scratch.cacheSetMany(entries);
  }

  /** the scratch keys this run created */
  get scratchKeys(): string[] {
    return [...this.copies.keys()].map((k) => this.scratchPrefix + k);
  }

  /** delete every copy (after the session closed, so its leases were released into scratch) */
  async discard(): Promise<void> {
    await Promise.allSettled([...this.copies.values()]);
    const keys = this.scratchKeys;
    for (let i = 0; i < keys.length; i += 500) await this.client.sendCommand(['UNLINK', ...keys.slice(i, i + 500)]);
  }
}

/**
 * Put a ScratchStore under the suite's store: `client` becomes the store's Redis connection (with
 * the store's own timeouts and memory fallback) and every Redis operation goes through the scratch
 * layer. Fails (throws) rather than leave the real Redis writable.
 *
 * ResilientStore has no public way to choose its Redis backend, so the backend it builds in
 * attach() is replaced here; if that field is ever renamed the check below stops explain instead of
 * letting it write to the fleet's store.
 */
export function sandbox(store: ResilientStore, client: Parameters<ResilientStore['attach']>[0], prefix: string): ScratchStore {
  store.attach(client);
  const inner = store as unknown as { redis?: unknown };
  if (!(inner.redis instanceof RedisStore)) throw new Error('explain cannot put its scratch layer under the store (ResilientStore changed): refusing to run on the real store');
  const scratch = new ScratchStore(client, prefix);
  inner.redis = scratch;
  return scratch;
}
