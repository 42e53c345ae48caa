/**
 * The Redis backend of the Store interface. Every multi-step operation is one Lua script (one round
 * trip, atomic across the fleet); every key the suite creates gets a TTL in the same step, except the
 * sets, which are lists an operator manages and whose members carry their own expiry.
 *
 * Time is Redis's own (TIME inside the scripts), never the calling node's: a node whose clock runs
 * ahead must not expire the leases or rate buckets of the others. Variadic commands inside scripts
 * take at most SWEEP arguments (Lua's unpack fails beyond about 8,000), and a whole set is read in
 * steps outside any script (setSnapshot), never by one long command.
 */
import { createHash } from 'node:crypto';
import { SET_JOURNAL_MAX, versionStep, type AdmitResult, type LeaseResult, type LeaseSpec, type RateSpec, type SetChange, type SetEntry, type SetSnapshot, type Store } from './store';

/** The part of a node-redis v5 client the store uses. */
export interface RedisLike {
  readonly isReady: boolean;
  sendCommand(args: string[]): Promise<unknown>;
}

/** the expiry score of a set member that never expires (exact in a Redis double) */
const NEVER = Number.MAX_SAFE_INTEGER;
/** the scripts' clock: Redis's own, in ms */
const NOW_LUA = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

class Script {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }
  async run(client: RedisLike, keys: string[], args: Array<string | number>): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args.map(String)];
    try {
      return await client.sendCommand(['EVALSHA', this.sha, ...tail]);
    } catch (err) {
      if (!(err instanceof Error) || !/NOSCRIPT/.test(err.message)) throw err;
      return client.sendCommand(['EVAL', this.source, ...tail]);
    }
  }
}

// KEYS[1] counter; ARGV by, ttl_ms
const INCR = new Script(`
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v`);

// KEYS[1] zset id->expiry; ARGV (unused), ttl_ms, max, id
const LEASE_ACQUIRE = new Script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local exp = now + tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[4])
local n = redis.call('ZCARD', KEYS[1])
if held or n < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], exp, ARGV[4])
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
  if held then return {1, n} end
  return {1, n + 1}
end
return {0, n}`);

// KEYS: lease keys (ARGV[4] of them), then rate keys.
// ARGV: (unused), id, lease_ttl_ms, n_leases, max per lease key..., then limit, window_ms per rate key...
// All or nothing: checks every limit first, then takes the leases and one event of each rate (GCRA).
// -> {admitted, refused kind (1 lease, 2 rate), refused index, retry_after_ms}
const ADMIT = new Script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = ARGV[2]
local ttl = tonumber(ARGV[3])
local nl = tonumber(ARGV[4])
for i = 1, nl do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  if not redis.call('ZSCORE', KEYS[i], id) and redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[4 + i]) then
    return {0, 1, i - 1, 0}
  end
end
local tats = {}
for j = 1, #KEYS - nl do
  local limit = tonumber(ARGV[4 + nl + 2 * j - 1])
  local win = tonumber(ARGV[4 + nl + 2 * j])
  local tat = tonumber(redis.call('GET', KEYS[nl + j]) or now)
  if tat < now then tat = now end
  local nt = tat + win / limit
  if nt - now > win then return {0, 2, j - 1, math.ceil(nt - now - win)} end
  tats[j] = nt
end
for i = 1, nl do
  redis.call('ZADD', KEYS[i], now + ttl, id)
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
for j = 1, #KEYS - nl do
  redis.call('SET', KEYS[nl + j], string.format('%.3f', tats[j]), 'PX', math.max(1, math.ceil(tats[j] - now)))
end
return {1, 0, 0, 0}`);

// KEYS lease keys; ARGV (unused), ttl_ms, id: (re)take the lease in each
const LEASE_REFRESH_MANY = new Script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + ttl, ARGV[3])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1`);

// KEYS: lease keys (ARGV[2] of them), then rate keys; ARGV id, n_leases, then limit, window_ms per
// rate key: undo one admit (its leases released, one event of each rate given back)
const ADMIT_UNDO = new Script(`
${NOW_LUA}
local nl = tonumber(ARGV[2])
for i = 1, nl do redis.call('ZREM', KEYS[i], ARGV[1]) end
for j = 1, #KEYS - nl do
  local tat = tonumber(redis.call('GET', KEYS[nl + j]))
  if tat then
    local nt = tat - tonumber(ARGV[2 + 2 * j]) / tonumber(ARGV[1 + 2 * j])
    if nt <= now then redis.call('DEL', KEYS[nl + j])
    else redis.call('SET', KEYS[nl + j], string.format('%.3f', nt), 'PX', math.max(1, math.ceil(nt - now))) end
  end
end
return 1`);

// KEYS lease keys; ARGV id
const LEASE_RELEASE_MANY = new Script(`
for i = 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return 1`);

// KEYS cache keys; ARGV value_1, ttl_ms_1, value_2, ttl_ms_2, ...
const CACHE_SET_MANY = new Script(`
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'PX', ARGV[2 * i])
end
return 1`);

// The journaled sets. KEYS: [1] zset member->expiry (NEVER = none), [2] hash member->value,
// [3] version counter, [4] journal (zset version -> "version|previous version|member"). Each journal
// entry names the version it follows, so a reader's version is known to the journal only while the
// chain from it is unbroken: a Redis restarted empty, restored from an older copy or failed over to
// a lagging replica has a history without the reader's version, whatever its counter says. A write
// also removes up to SWEEP expired members.
const SWEEP = 500;
const JOURNAL_LUA = `
local v = redis.call('INCRBY', KEYS[3], ARGV[JSTEP])
local prev = v - tonumber(ARGV[JSTEP])
redis.call('ZADD', KEYS[4], v, string.format('%.0f|%.0f|', v, prev) .. ARGV[1])
local over = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[JMAX])
if over > 0 then redis.call('ZPOPMIN', KEYS[4], over) end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ${SWEEP})
if #dead > 0 then
  redis.call('HDEL', KEYS[2], unpack(dead))
  redis.call('ZREM', KEYS[1], unpack(dead))
end`;

// ARGV member, value, ttl_ms (-1 = never), NEVER, version step, journal max
const SET_PUT = new Script(`
${NOW_LUA}
local exp = ARGV[4]
if tonumber(ARGV[3]) >= 0 then exp = now + tonumber(ARGV[3]) end
redis.call('ZADD', KEYS[1], exp, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
${JOURNAL_LUA.split('JSTEP').join('5').split('JMAX').join('6')}
return 1`);

// ARGV member, version step, journal max -> 1 when the member was there and live
const SET_DELETE = new Script(`
${NOW_LUA}
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
${JOURNAL_LUA.split('JSTEP').join('2').split('JMAX').join('3')}
if s and tonumber(s) > now then return 1 end
return 0`);

// ARGV since, max -> {version} when nothing changed; {-1} when the journal has no unbroken chain
// from `since` (or too much changed); else {version, member, value, expiry, ...} with expiry -1 for
// a member that is gone
const SET_CHANGES = new Script(`
${NOW_LUA}
local ver = tonumber(redis.call('GET', KEYS[3]) or '0')
local since = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
if since == ver then return {string.format('%.0f', ver)} end
if since > ver then return {'-1'} end
local log = redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. ARGV[1], '+inf', 'LIMIT', 0, max * 4 + 1)
if #log == 0 or #log > max * 4 then return {'-1'} end
local seen = {}
local members = {}
for i = 1, #log do
  local a = string.find(log[i], '|', 1, true)
  local b = string.find(log[i], '|', a + 1, true)
  -- the first change after since must follow since itself
  if i == 1 and tonumber(string.sub(log[i], a + 1, b - 1)) ~= since then return {'-1'} end
  local m = string.sub(log[i], b + 1)
  if not seen[m] then
    seen[m] = true
    members[#members + 1] = m
  end
end
if #members > max then return {'-1'} end
local out = {string.format('%.0f', ver)}
for i = 1, #members do
  local m = members[i]
  local e = redis.call('ZSCORE', KEYS[1], m)
  local val = redis.call('HGET', KEYS[2], m)
  out[#out + 1] = m
  if e and val and tonumber(e) > now then
    out[#out + 1] = val
    out[#out + 1] = e
  else
    out[#out + 1] = ''
    out[#out + 1] = '-1'
  end
end
return out`);

/** members read per HSCAN step of a snapshot */
const SCAN_COUNT = 2000;

export class RedisStore implements Store {
  readonly backend = 'redis' as const;

  constructor(
    private readonly client: RedisLike,
    private readonly prefix: string,
  ) {}

  private k(key: string): string {
    return this.prefix + key;
  }

  async incr(key: string, by: number, ttlSec: number): Promise<number> {
    return Number(await INCR.run(this.client, [this.k(key)], [by, Math.max(1, Math.round(ttlSec * 1000))]));
  }

  async getCount(key: string): Promise<number> {
    const v = await this.client.sendCommand(['GET', this.k(key)]);
    return v === null || v === undefined ? 0 : Number(v);
  }

  async leaseAcquire(key: string, id: string, ttlSec: number, max: number): Promise<LeaseResult> {
    const r = (await LEASE_ACQUIRE.run(this.client, [this.k(key)], [0, Math.round(ttlSec * 1000), max, id])) as [number, number];
    return { granted: Number(r[0]) === 1, count: Number(r[1]) };
  }

  async admit(id: string, leases: readonly LeaseSpec[], leaseTtlSec: number, rates: readonly RateSpec[]): Promise<AdmitResult> {
    const keys = [...leases.map((l) => this.k(l.key)), ...rates.map((r) => this.k(r.key))];
    if (keys.length === 0) return { admitted: true, refused: null, retryAfterMs: 0 };
    const args: Array<string | number> = [0, id, Math.round(leaseTtlSec * 1000), leases.length, ...leases.map((l) => l.max)];
    for (const r of rates) args.push(r.limit, Math.round(r.windowSec * 1000));
    const [ok, kind, index, retry] = ((await ADMIT.run(this.client, keys, args)) as unknown[]).map(Number) as [number, number, number, number];
    if (ok === 1) return { admitted: true, refused: null, retryAfterMs: 0 };
    return { admitted: false, refused: { kind: kind === 1 ? 'lease' : 'rate', index }, retryAfterMs: retry };
  }

  /** undo an admit that Redis granted after its caller stopped waiting (see ResilientStore.admit) */
  async admitUndo(id: string, leases: readonly LeaseSpec[], rates: readonly RateSpec[]): Promise<void> {
    const keys = [...leases.map((l) => this.k(l.key)), ...rates.map((r) => this.k(r.key))];
    if (keys.length === 0) return;
    const args: Array<string | number> = [id, leases.length];
    for (const r of rates) args.push(r.limit, Math.round(r.windowSec * 1000));
    await ADMIT_UNDO.run(this.client, keys, args);
  }

  async leaseRefreshMany(keys: readonly string[], id: string, ttlSec: number): Promise<void> {
    if (keys.length) await LEASE_REFRESH_MANY.run(this.client, keys.map((k) => this.k(k)), [0, Math.round(ttlSec * 1000), id]);
  }

  async leaseReleaseMany(keys: readonly string[], id: string): Promise<void> {
    if (keys.length) await LEASE_RELEASE_MANY.run(this.client, keys.map((k) => this.k(k)), [id]);
  }

  private setKeys(key: string): string[] {
    return [this.k(`${key}:exp`), this.k(`${key}:val`), this.k(`${key}:ver`), this.k(`${key}:log`)];
  }

  async setPut(key: string, member: string, value: string, ttlSec: number | null): Promise<void> {
    await SET_PUT.run(this.client, this.setKeys(key), [member, value, ttlSec === null ? -1 : Math.max(1, Math.round(ttlSec * 1000)), NEVER, versionStep(), SET_JOURNAL_MAX]);
  }

  async setDelete(key: string, member: string): Promise<boolean> {
    return Number(await SET_DELETE.run(this.client, this.setKeys(key), [member, versionStep(), SET_JOURNAL_MAX])) === 1;
  }

  async setEntries(key: string): Promise<SetEntry[]> {
    return (await this.setSnapshot(key)).entries;
  }

  /**
   * Every live member, read in steps (HSCAN of the values, ZMSCORE of their expiries), never one
   * long command: Redis keeps serving the fleet meanwhile. A change made during the read may or
   * may not be in it; catching up with setChanges from the returned version makes it exact.
   */
  async setSnapshot(key: string): Promise<SetSnapshot> {
    const [expKey, valKey, verKey] = this.setKeys(key) as [string, string, string];
    const version = Number((await this.client.sendCommand(['GET', verKey])) ?? 0);
    const [sec, usec] = (await this.client.sendCommand(['TIME'])) as [string, string];
    const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    const entries: SetEntry[] = [];
    let cursor = '0';
    do {
      const [next, flat] = (await this.client.sendCommand(['HSCAN', valKey, cursor, 'COUNT', String(SCAN_COUNT)])) as [string, string[]];
      cursor = String(next);
      if (flat.length) {
        const members: string[] = [];
        for (let i = 0; i < flat.length; i += 2) members.push(String(flat[i]));
        const scores = (await this.client.sendCommand(['ZMSCORE', expKey, ...members])) as Array<string | null>;
        members.forEach((member, i) => {
          const sc = scores[i];
          if (sc === null || sc === undefined) return;
          const exp = Number(sc);
          if (exp <= now) return;
          entries.push({ member, value: String(flat[2 * i + 1]), expiresAt: exp >= NEVER ? null : exp });
        });
      }
    } while (cursor !== '0');
    return { version, entries };
  }

  async setChanges(key: string, since: number, max: number): Promise<{ version: number; changes: SetChange[] } | null> {
    const flat = (await SET_CHANGES.run(this.client, this.setKeys(key), [since, max])) as string[];
    const version = Number(flat[0]);
    if (version === -1) return null;
    const changes: SetChange[] = [];
    for (let i = 1; i < flat.length; i += 3) {
      const member = String(flat[i]);
      const exp = Number(flat[i + 2]);
      changes.push({ member, entry: exp === -1 ? null : { member, value: String(flat[i + 1]), expiresAt: exp >= NEVER ? null : exp } });
    }
    return { version, changes };
  }

  async cacheGetMany(keys: readonly string[]): Promise<Array<string | null>> {
    if (keys.length === 0) return [];
    const v = (await this.client.sendCommand(['MGET', ...keys.map((k) => this.k(k))])) as Array<string | null>;
    return v.map((x) => (x === null || x === undefined ? null : String(x)));
  }

  async cacheSetMany(entries: ReadonlyArray<{ key: string; value: string; ttlSec: number }>): Promise<void> {
    const live = entries.filter((e) => Math.round(e.ttlSec * 1000) > 0);
    if (live.length === 0) return;
    await CACHE_SET_MANY.run(
      this.client,
      live.map((e) => this.k(e.key)),
      live.flatMap((e) => [e.value, Math.round(e.ttlSec * 1000)]),
    );
  }
}
