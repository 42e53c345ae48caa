/**
 * The suite's shared state: counters with TTL, concurrency leases, sets whose members expire, and a
 * cache. Two backends with the same semantics: memory (one node) and Redis (a fleet). Keys are
 * relative; each backend adds the configured prefix.
 *
 * Time: every expiry is by the backend's own clock: Redis's (TIME inside the scripts, PX) for the
 * fleet, the node's for memory (a fake clock drives the memory backend in tests).
 *
 * Sets are journaled: every change moves the set's version (by a random step) and is logged with
 * the version it follows, so a reader that holds version N catches up with the members changed
 * since N (`setChanges`, one round trip) instead of reading everything again (`setSnapshot`, in
 * steps), and only while the journal's chain from N is unbroken: a store that lost history (a Redis
 * restarted empty or restored from an older copy) sends the reader to a snapshot, even once its
 * counter has moved past N.
 */

export type Clock = () => number;
export const systemClock: Clock = () => Date.now();

export interface SetEntry {
  readonly member: string;
  readonly value: string;
  /** ms since the epoch, or null for no expiry */
  readonly expiresAt: number | null;
}

/** one member changed since a version: its entry now, or null when it was removed or expired */
export interface SetChange {
  readonly member: string;
  readonly entry: SetEntry | null;
}

export interface SetSnapshot {
  /** the set's version when the read started (catch up from it with setChanges) */
  readonly version: number;
  readonly entries: SetEntry[];
}

/** changes of a set kept in its journal (older ones are dropped; a reader that far behind reads a snapshot) */
export const SET_JOURNAL_MAX = 10_000;

/** the random step a set's version moves by on each change (two histories rarely share a version) */
export function versionStep(): number {
  return 1 + Math.floor(Math.random() * 1_000_000);
}

export interface LeaseResult {
  /** true when the lease is held (newly or already) */
  readonly granted: boolean;
  /** live leases in the key after the call */
  readonly count: number;
}

/** a concurrency limit: at most `max` live leases in `key` */
export interface LeaseSpec {
  readonly key: string;
  readonly max: number;
}

/** a rate limit: at most `limit` in a burst, refilled at `limit` per `windowSec` (GCRA) */
export interface RateSpec {
  readonly key: string;
  readonly limit: number;
  readonly windowSec: number;
}

export interface AdmitResult {
  readonly admitted: boolean;
  /** the first limit that refused, as an index into the request's leases or rates */
  readonly refused: { readonly kind: 'lease' | 'rate'; readonly index: number } | null;
  /** for a refused rate: ms until one more would be admitted */
  readonly retryAfterMs: number;
}

/**
 * The generic cell rate algorithm (a token bucket kept as one timestamp, the "theoretical arrival
 * time"): `limit` events may come at once, then one every windowMs/limit. There is no window
 * boundary, so no double burst across one. Returns the new TAT when admitted.
 */
export function gcra(tat: number | null, now: number, limit: number, windowMs: number): { ok: boolean; tat: number; retryAfterMs: number } {
  const interval = windowMs / limit;
  const base = Math.max(tat ?? now, now);
  const next = base + interval;
  if (next - now > windowMs) return { ok: false, tat: base, retryAfterMs: Math.ceil(next - now - windowMs) };
  return { ok: true, tat: next, retryAfterMs: 0 };
}

export interface Store {
  readonly backend: 'memory' | 'redis';
  /** add `by` to a counter; the TTL is set when the counter is created (never extended) */
  incr(key: string, by: number, ttlSec: number): Promise<number>;
  /** current counter value (0 when absent or expired) */
  getCount(key: string): Promise<number>;
  /** hold lease `id` in `key` if fewer than `max` live leases exist (or `id` already holds one); atomic */
  leaseAcquire(key: string, id: string, ttlSec: number, max: number): Promise<LeaseResult>;
  /**
   * All or nothing, atomically: take lease `id` in every lease key (if each has room or already
   * holds it) and one event of every rate; when any limit refuses, nothing changes.
   */
  admit(id: string, leases: readonly LeaseSpec[], leaseTtlSec: number, rates: readonly RateSpec[]): Promise<AdmitResult>;
  /** extend the leases `id` holds in `keys`, re-creating any that vanished (a Redis restart) */
  leaseRefreshMany(keys: readonly string[], id: string, ttlSec: number): Promise<void>;
  leaseReleaseMany(keys: readonly string[], id: string): Promise<void>;
  /** put a member with a value (e.g. JSON of reason and source) and an optional TTL */
  setPut(key: string, member: string, value: string, ttlSec: number | null): Promise<void>;
  /** remove a member; true when it was there and live */
  setDelete(key: string, member: string): Promise<boolean>;
  /** every live member */
  setEntries(key: string): Promise<SetEntry[]>;
  /** every live member and the version they are of (read in chunks: no single long command) */
  setSnapshot(key: string): Promise<SetSnapshot>;
  /**
   * The members changed since version `since` (at most `max` of them) and the version now; null when
   * the journal no longer reaches back to `since` (or the set is younger: a restarted Redis), or
   * more than `max` changed: then read a snapshot.
   */
  setChanges(key: string, since: number, max: number): Promise<{ version: number; changes: SetChange[] } | null>;
  /** the cached values of `keys` (null when absent or expired), in one round trip */
  cacheGetMany(keys: readonly string[]): Promise<Array<string | null>>;
  /** cache writes, each with its TTL (0 = not written), in one round trip */
  cacheSetMany(entries: ReadonlyArray<{ key: string; value: string; ttlSec: number }>): Promise<void>;
}

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

/** The single-node backend. Expired entries are dropped lazily and by a periodic sweep. */
export class MemoryStore implements Store {
  readonly backend = 'memory' as const;
  private readonly counters = new Map<string, Expiring<number>>();
  private readonly cache = new Map<string, Expiring<string>>();
  private readonly leases = new Map<string, Map<string, number>>();
  private readonly rates = new Map<string, Expiring<number>>();
  private readonly sets = new Map<string, Map<string, { value: string; expiresAt: number | null }>>();
  private readonly journals = new Map<string, { version: number; log: Array<{ version: number; prev: number; member: string }> }>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(private readonly now: Clock = systemClock, sweepEverySec = 60) {
    if (sweepEverySec > 0) {
      this.sweeper = setInterval(() => this.sweep(), sweepEverySec * 1000);
      this.sweeper.unref();
    }
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  sweep(): void {
    const t = this.now();
    for (const [k, v] of this.counters) if (v.expiresAt <= t) this.counters.delete(k);
    for (const [k, v] of this.cache) if (v.expiresAt <= t) this.cache.delete(k);
    for (const [k, v] of this.rates) if (v.expiresAt <= t) this.rates.delete(k);
    for (const [k, m] of this.leases) {
      for (const [id, exp] of m) if (exp <= t) m.delete(id);
      if (m.size === 0) this.leases.delete(k);
    }
    for (const [k, m] of this.sets) {
      for (const [id, e] of m) if (e.expiresAt !== null && e.expiresAt <= t) m.delete(id);
      if (m.size === 0) this.sets.delete(k);
    }
  }

  private live<T>(map: Map<string, Expiring<T>>, key: string): Expiring<T> | undefined {
    const e = map.get(key);
    if (e && e.expiresAt <= this.now()) {
      map.delete(key);
      return undefined;
    }
    return e;
  }

  async incr(key: string, by: number, ttlSec: number): Promise<number> {
    const e = this.live(this.counters, key);
    if (e) {
      e.value += by;
      return e.value;
    }
    this.counters.set(key, { value: by, expiresAt: this.now() + ttlSec * 1000 });
    return by;
  }

  async getCount(key: string): Promise<number> {
    return this.live(this.counters, key)?.value ?? 0;
  }

  private liveLeases(key: string): Map<string, number> {
    let m = this.leases.get(key);
    if (!m) {
      m = new Map();
      this.leases.set(key, m);
    }
    const t = this.now();
    for (const [id, exp] of m) if (exp <= t) m.delete(id);
    return m;
  }

  async leaseAcquire(key: string, id: string, ttlSec: number, max: number): Promise<LeaseResult> {
    const m = this.liveLeases(key);
    if (m.has(id) || m.size < max) {
      m.set(id, this.now() + ttlSec * 1000);
      return { granted: true, count: m.size };
    }
    return { granted: false, count: m.size };
  }

  async admit(id: string, leases: readonly LeaseSpec[], leaseTtlSec: number, rates: readonly RateSpec[]): Promise<AdmitResult> {
    const now = this.now();
    for (let i = 0; i < leases.length; i++) {
      const l = leases[i] as LeaseSpec;
      const m = this.liveLeases(l.key);
      if (!m.has(id) && m.size >= l.max) return { admitted: false, refused: { kind: 'lease', index: i }, retryAfterMs: 0 };
    }
    const tats: number[] = [];
    for (let j = 0; j < rates.length; j++) {
      const r = rates[j] as RateSpec;
      const g = gcra(this.live(this.rates, r.key)?.value ?? null, now, r.limit, r.windowSec * 1000);
      if (!g.ok) return { admitted: false, refused: { kind: 'rate', index: j }, retryAfterMs: g.retryAfterMs };
      tats.push(g.tat);
    }
    for (const l of leases) this.liveLeases(l.key).set(id, now + leaseTtlSec * 1000);
    rates.forEach((r, j) => this.rates.set(r.key, { value: tats[j] as number, expiresAt: tats[j] as number }));
    return { admitted: true, refused: null, retryAfterMs: 0 };
  }

  async leaseRefreshMany(keys: readonly string[], id: string, ttlSec: number): Promise<void> {
    const exp = this.now() + ttlSec * 1000;
    for (const k of keys) this.liveLeases(k).set(id, exp);
  }

  async leaseReleaseMany(keys: readonly string[], id: string): Promise<void> {
    for (const k of keys) this.leases.get(k)?.delete(id);
  }

  private journal(key: string, member: string): void {
    let j = this.journals.get(key);
    if (!j) {
      j = { version: 0, log: [] };
      this.journals.set(key, j);
    }
    const prev = j.version;
    j.version += versionStep();
    j.log.push({ version: j.version, prev, member });
    if (j.log.length > SET_JOURNAL_MAX) j.log.splice(0, j.log.length - SET_JOURNAL_MAX);
  }

  async setPut(key: string, member: string, value: string, ttlSec: number | null): Promise<void> {
    let m = this.sets.get(key);
    if (!m) {
      m = new Map();
      this.sets.set(key, m);
    }
    m.set(member, { value, expiresAt: ttlSec === null ? null : this.now() + ttlSec * 1000 });
    this.journal(key, member);
  }

  async setDelete(key: string, member: string): Promise<boolean> {
    const m = this.sets.get(key);
    const e = m?.get(member);
    m?.delete(member);
    this.journal(key, member);
    return e !== undefined && (e.expiresAt === null || e.expiresAt > this.now());
  }

  async setEntries(key: string): Promise<SetEntry[]> {
    return (await this.setSnapshot(key)).entries;
  }

  async setSnapshot(key: string): Promise<SetSnapshot> {
    const m = this.sets.get(key);
    const version = this.journals.get(key)?.version ?? 0;
    if (!m) return { version, entries: [] };
    const t = this.now();
    const entries: SetEntry[] = [];
    for (const [member, e] of m) {
      if (e.expiresAt !== null && e.expiresAt <= t) m.delete(member);
      else entries.push({ member, value: e.value, expiresAt: e.expiresAt });
    }
    return { version, entries };
  }

  async setChanges(key: string, since: number, max: number): Promise<{ version: number; changes: SetChange[] } | null> {
    const j = this.journals.get(key) ?? { version: 0, log: [] };
    if (since === j.version) return { version: j.version, changes: [] };
    const after = j.log.filter((c) => c.version > since);
    // the chain from `since` must be unbroken
    if (since > j.version || after[0]?.prev !== since) return null;
    const members = [...new Set(after.map((c) => c.member))];
    if (members.length > max) return null;
    const m = this.sets.get(key);
    const t = this.now();
    const changes = members.map((member): SetChange => {
      const e = m?.get(member);
      return { member, entry: e && (e.expiresAt === null || e.expiresAt > t) ? { member, value: e.value, expiresAt: e.expiresAt } : null };
    });
    return { version: j.version, changes };
  }

  async cacheGetMany(keys: readonly string[]): Promise<Array<string | null>> {
    return keys.map((k) => this.live(this.cache, k)?.value ?? null);
  }

  async cacheSetMany(entries: ReadonlyArray<{ key: string; value: string; ttlSec: number }>): Promise<void> {
    const t = this.now();
    for (const e of entries) if (e.ttlSec > 0) this.cache.set(e.key, { value: e.value, expiresAt: t + e.ttlSec * 1000 });
  }
}
