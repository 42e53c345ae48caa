/**
 * The Redis backend of the Store interface. Every multi-step operation is one Lua script (one round
 * trip, atomic across the fleet); every key the suite creates gets a TTL in the same step, except the
 * sets, which are lists an operator manages and whose members carry their own expiry.
 */
import { createHash } from 'node:crypto';
import type { Clock, LeaseResult, SetEntry, Store } from './store';
import { systemClock } from './store';

/** The part of a node-redis v5 client the store uses. */
export interface RedisLike {
  readonly isReady: boolean;
  sendCommand(args: string[]): Promise<unknown>;
}

/** the expiry score of a set member that never expires (exact in a Redis double) */
const NEVER = Number.MAX_SAFE_INTEGER;

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

// KEYS[1] zset id->expiry; ARGV now_ms, ttl_ms, max, id
const LEASE_ACQUIRE = new Script(`
local now = tonumber(ARGV[1])
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

// KEYS[1] zset; ARGV now_ms, ttl_ms, id
const LEASE_REFRESH = new Script(`
local now = tonumber(ARGV[1])
local s = redis.call('ZSCORE', KEYS[1], ARGV[3])
if not s or tonumber(s) <= now then
  redis.call('ZREM', KEYS[1], ARGV[3])
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`);

// KEYS[1] zset; ARGV now_ms
const LEASE_COUNT = new Script(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])`);

// KEYS[1] zset member->expiry (NEVER = none), KEYS[2] hash member->value; ARGV member, value, expiry
const SET_PUT = new Script(`
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1`);

// ARGV member, now_ms
const SET_GET = new Script(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s then return false end
if tonumber(s) <= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return false
end
return redis.call('HGET', KEYS[2], ARGV[1])`);

// ARGV member, now_ms
const SET_DELETE = new Script(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if s and tonumber(s) > tonumber(ARGV[2]) then return 1 end
return 0`);

// ARGV now_ms -> flat list member, value, expiry
const SET_ENTRIES = new Script(`
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #dead > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
  redis.call('HDEL', KEYS[2], unpack(dead))
end
local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #live, 2 do
  out[#out + 1] = live[i]
  out[#out + 1] = redis.call('HGET', KEYS[2], live[i]) or ''
  out[#out + 1] = live[i + 1]
end
return out`);

export class RedisStore implements Store {
  readonly backend = 'redis' as const;

  constructor(
    private readonly client: RedisLike,
    private readonly prefix: string,
    private readonly now: Clock = systemClock,
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
    const r = (await LEASE_ACQUIRE.run(this.client, [this.k(key)], [this.now(), Math.round(ttlSec * 1000), max, id])) as [number, number];
    return { granted: Number(r[0]) === 1, count: Number(r[1]) };
  }

  async leaseRefresh(key: string, id: string, ttlSec: number): Promise<boolean> {
    return Number(await LEASE_REFRESH.run(this.client, [this.k(key)], [this.now(), Math.round(ttlSec * 1000), id])) === 1;
  }

  async leaseRelease(key: string, id: string): Promise<void> {
    await this.client.sendCommand(['ZREM', this.k(key), id]);
  }

  async leaseCount(key: string): Promise<number> {
    return Number(await LEASE_COUNT.run(this.client, [this.k(key)], [this.now()]));
  }

  private setKeys(key: string): string[] {
    return [this.k(`${key}:exp`), this.k(`${key}:val`)];
  }

  async setPut(key: string, member: string, value: string, ttlSec: number | null): Promise<void> {
    const exp = ttlSec === null ? NEVER : this.now() + Math.round(ttlSec * 1000);
    await SET_PUT.run(this.client, this.setKeys(key), [member, value, exp]);
  }

  async setGet(key: string, member: string): Promise<string | null> {
    const v = await SET_GET.run(this.client, this.setKeys(key), [member, this.now()]);
    return v === null || v === undefined ? null : String(v);
  }

  async setDelete(key: string, member: string): Promise<boolean> {
    return Number(await SET_DELETE.run(this.client, this.setKeys(key), [member, this.now()])) === 1;
  }

  async setEntries(key: string): Promise<SetEntry[]> {
    const flat = (await SET_ENTRIES.run(this.client, this.setKeys(key), [this.now()])) as string[];
    const out: SetEntry[] = [];
    for (let i = 0; i < flat.length; i += 3) {
      const score = Number(flat[i + 2]);
      out.push({ member: String(flat[i]), value: String(flat[i + 1]), expiresAt: score >= NEVER ? null : score });
    }
    return out;
  }

  async cacheGet(key: string): Promise<string | null> {
    const v = await this.client.sendCommand(['GET', this.k(key)]);
    return v === null || v === undefined ? null : String(v);
  }

  async cacheSet(key: string, value: string, ttlSec: number): Promise<void> {
    const ms = Math.round(ttlSec * 1000);
    if (ms <= 0) return;
    await this.client.sendCommand(['SET', this.k(key), value, 'PX', String(ms)]);
  }

  async cacheDelete(key: string): Promise<void> {
    await this.client.sendCommand(['DEL', this.k(key)]);
  }
}
