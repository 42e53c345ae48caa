/**
 * shield.dnsbl's lookups: which (zone, item) pairs to ask for a client, and asking them through the
 * fleet's shared cache. Every dependency (resolver, store, log, settings) is passed in.
 *
 * One cache read for all the pairs of a stage, DNS in parallel for the misses, one cache write for
 * the answers; cache keys hold the zone and the item, never a DQS key. A DNS fault or an error code
 * is a zone error: logged at most once per zone per `error_log_interval` and counted per zone per
 * day in the store (`dnsbl:errors:<zone>`), never read as a listing. An item that cannot be a query
 * in a zone (a name over 253 octets with the zone appended) is not asked: its result is a `skip`
 * with the reason, at once, and not a zone error.
 *
 * Names are the client's choice (HELO, sender domain), so what they cost is bounded twice:
 *  - per connection, `NameBudget`: at most `max_names` distinct names are asked about; the rest are
 *    read from the shared cache only (`cacheOnly`: no DNS query, no write);
 *  - per client and time, `cache_names`: the answers for at most N new names per window are written
 *    to the shared cache (counted in `dnsbl:names:<client>`); the rest stay in this node's resolver
 *    cache (bounded, LRU), so a client that reconnects cannot grow Redis at its command rate.
 */
import { queryNameProblem } from '../core/dns';
import { errorMessage } from '../core/errors';
import type { Rate } from '../core/config';
import type { ParsedIp } from '../core/net';
import type { Store } from '../core/store';
import { classify, domainItem, ipQueryLabel, queryName, type Zone, type ZoneResult } from './dnsbl';

export interface Lookup {
  readonly zone: Zone;
  /** what is asked about, as shown: the IP or the domain */
  readonly item: string;
  /** the query label: reversed IPv4 octets or IPv6 nibbles, or the domain */
  readonly label: string;
  readonly identity: ZoneResult['identity'];
}

/** the address zones (ip, allow) that take this client's family */
export function ipLookups(zones: readonly Zone[], ip: ParsedIp): Lookup[] {
  const label = ipQueryLabel(ip);
  return zones.filter((z) => z.type !== 'domain' && (ip.family === 4 ? z.ipv4 : z.ipv6)).map((zone) => ({ zone, item: ip.text, label, identity: 'ip' as const }));
}

/** the domain zones that check this identity, each asked about the name it wants (see domainItem) */
export function domainLookups(zones: readonly Zone[], identity: 'helo' | 'rdns' | 'mail_from', name: string | null): Lookup[] {
  const out: Lookup[] = [];
  for (const zone of zones) {
    if (zone.type !== 'domain' || !zone.identities.includes(identity)) continue;
    const item = domainItem(zone, name);
    if (item) out.push({ zone, item, label: item, identity });
  }
  return out;
}

/**
 * The A records of a name; rejects on a DNS fault (an error with a `code`, e.g. DNS_TIMEOUT).
 * `fresh`: ask the nameserver, not the resolver's cache (health probes).
 */
export interface ZoneResolver {
  query(name: string, type: 'A', opts?: { readonly fresh?: boolean }): Promise<{ readonly records: readonly string[]; readonly ttl: number }>;
}

export interface LookupSettings {
  /** seconds an answer stays in the shared cache, at least and at most */
  readonly cache_min_ttl: number;
  readonly cache_max_ttl: number;
  /** seconds between two log lines about one zone's errors */
  readonly error_log_interval: number;
  /** new names per client whose answers may be written to the shared cache per window (null: no cap) */
  readonly cache_names?: Rate | null;
}

/** how one batch of lookups is run */
export interface LookupOptions {
  /**
   * the client as the cache budget counts it (an IPv4 address, an IPv6 /64): the answers for names
   * are written to the shared cache only within its `cache_names`; absent: no budget
   */
  readonly client?: string | null;
  /** read the shared cache only: no DNS query, no cache write; a miss gives no result */
  readonly cacheOnly?: boolean;
}

/**
 * The distinct names one connection may have asked about (HELO, rDNS names, sender domains
 * together): a name already counted is free, a new one is admitted while fewer than `max` are
 * counted. Lookups of the client's address are not names and never pass through here.
 */
export class NameBudget {
  private readonly seen = new Set<string>();

  /** split lookups into those within the budget (now counted) and those over it; max 0 = no cap */
  split(lookups: readonly Lookup[], max: number): { within: Lookup[]; over: Lookup[] } {
    if (max <= 0) return { within: [...lookups], over: [] };
    const within: Lookup[] = [];
    const over: Lookup[] = [];
    for (const l of lookups) {
      if (this.seen.has(l.item) || this.seen.size < max) {
        this.seen.add(l.item);
        within.push(l);
      } else {
        over.push(l);
      }
    }
    return { within, over };
  }

  get size(): number {
    return this.seen.size;
  }
}

/** the store key counting the names a client added to the shared cache in the current window */
export function nameBudgetKey(client: string): string {
  return `dnsbl:names:${client}`;
}

interface CacheWrite {
  readonly key: string;
  readonly value: string;
  readonly ttlSec: number;
  /** the item of a domain zone (a name), or null for an address */
  readonly name: string | null;
}

export interface LookupDeps {
  readonly resolver: ZoneResolver;
  readonly store: Pick<Store, 'cacheGetMany' | 'cacheSetMany' | 'incr'>;
  readonly log: { error(msg: string): void };
  /** the current settings (the config may be reloaded) */
  settings(): LookupSettings;
  /** is this zone disabled by the fleet's health checks? */
  disabled(zoneName: string): boolean;
}

/** the cache key of one answer: the zone and the item only, never the DQS key */
function cacheKey(l: Lookup): string {
  return `dnsbl:a:${l.zone.zone}:${l.item}`;
}

/** a cached answer, or null when the value is not one (then the zone is asked again) */
function parseCached(raw: string): string[] | null {
  try {
    const v: unknown = JSON.parse(raw);
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null;
  } catch {
    return null;
  }
}

export class ZoneLookups {
  private readonly errorLog = new Map<string, { last: number; count: number }>();

  constructor(private readonly deps: LookupDeps) {}

  /**
   * Look up every (zone, item) pair: one shared-cache read for all of them, DNS in parallel for the
   * misses, one cache write for the answers. Never rejects (it is started before anyone awaits it,
   * and maybe never awaited); a DNS fault is a zone error.
   */
  all(lookups: readonly Lookup[], opts: LookupOptions = {}): Promise<ZoneResult[]> {
    return this.run(lookups, opts).catch((err: unknown) => {
      this.deps.log.error(`dnsbl lookups failed: ${errorMessage(err)}`);
      return [];
    });
  }

  private async run(lookups: readonly Lookup[], opts: LookupOptions): Promise<ZoneResult[]> {
    const { store, resolver } = this.deps;
    const live = lookups.filter((l) => !this.deps.disabled(l.zone.name));
    if (live.length === 0) return [];
    const cached = await store.cacheGetMany(live.map(cacheKey)).catch(() => live.map(() => null));
    const writes: CacheWrite[] = [];
    const results = await Promise.all(
      live.map(async (l, i): Promise<ZoneResult | null> => {
        let codes: string[];
        const name = queryName(l.zone, l.label);
        // a name that cannot be a query is not sent (it would only wait for the timeout)
        const bad = queryNameProblem(name);
        if (bad) return { zone: l.zone, item: l.item, identity: l.identity, outcome: { status: 'skip', why: `cannot be asked: ${bad} (with the zone appended)` } };
        const hit = cached[i];
        const fromCache = hit ? parseCached(hit) : null;
        if (fromCache) {
          codes = fromCache;
        } else if (opts.cacheOnly) {
          return null;
        } else {
          try {
            const ans = await resolver.query(name, 'A');
            codes = [...ans.records];
            writes.push({ key: cacheKey(l), value: JSON.stringify(codes), ttlSec: this.clampTtl(ans.ttl), name: l.identity === 'ip' ? null : l.item });
          } catch (err) {
            // the resolver's message names the query (and a DQS key): keep it out of logs
            const code = (err as { code?: string }).code ?? 'DNS_ERROR';
            if (code === 'DNS_BAD_NAME') return { zone: l.zone, item: l.item, identity: l.identity, outcome: { status: 'skip' as const, why: 'cannot be asked' } };
            const outcome = { status: 'error' as const, why: code === 'DNS_TIMEOUT' ? 'timed out' : `lookup failed (${code})` };
            this.noteError(l.zone, outcome.why);
            return { zone: l.zone, item: l.item, identity: l.identity, outcome };
          }
        }
        const outcome = classify(l.zone, codes);
        if (outcome.status === 'error') this.noteError(l.zone, outcome.why);
        return { zone: l.zone, item: l.item, identity: l.identity, outcome };
      }),
    );
    if (writes.length) this.write(writes, opts.client ?? null).catch(() => undefined);
    return results.filter((r): r is ZoneResult => r !== null);
  }

  /**
   * Write new answers to the shared cache: an address's always, names' only within the client's
   * `cache_names` (one counter per client, created with the window as its TTL, so a fixed window
   * from the client's first new name). When the count cannot be had, names are not written.
   */
  private async write(writes: readonly CacheWrite[], client: string | null): Promise<void> {
    const budget = this.deps.settings().cache_names ?? null;
    let allowed: Set<string> | null = null;
    const names = [...new Set(writes.flatMap((w) => (w.name === null ? [] : [w.name])))];
    if (budget && client !== null && names.length > 0) {
      const count = await this.deps.store.incr(nameBudgetKey(client), names.length, budget.windowSec).catch(() => Infinity);
      const room = Math.max(0, budget.limit - (count - names.length));
      allowed = new Set(names.slice(0, room));
    }
    const out = writes.filter((w) => w.name === null || allowed === null || allowed.has(w.name)).map(({ key, value, ttlSec }) => ({ key, value, ttlSec }));
    if (out.length) await this.deps.store.cacheSetMany(out);
  }

  private clampTtl(ttl: number): number {
    const s = this.deps.settings();
    return Math.min(s.cache_max_ttl, Math.max(s.cache_min_ttl, ttl));
  }

  private noteError(zone: Zone, why: string): void {
    const now = Date.now();
    const e = this.errorLog.get(zone.name) ?? { last: 0, count: 0 };
    e.count++;
    if (now - e.last >= this.deps.settings().error_log_interval * 1000) {
      this.deps.log.error(`dnsbl zone ${zone.name}: ${why} (${e.count} error${e.count === 1 ? '' : 's'} since the last report); answers like this are never read as listings`);
      e.last = now;
      e.count = 0;
    }
    this.errorLog.set(zone.name, e);
    // the fleet-wide metric: errors per zone per day
    this.deps.store.incr(`dnsbl:errors:${zone.name}`, 1, 86400).catch(() => undefined);
  }
}
