/**
 * The store every shield plugin uses: Redis when it is configured and answering, the node's memory
 * otherwise. Each operation goes to Redis only while the client is ready, and only for `timeoutMs`;
 * on any failure it runs on the memory backend instead, so a dead or slow Redis costs a check its
 * fleet-wide view, never a hung hook, an exception or a crash.
 *
 * A circuit breaker keeps a slow Redis from costing every operation the full timeout: after a
 * failure or timeout, operations use memory at once for `retryAfterMs`; then one operation probes
 * Redis (the others keep using memory) and its success brings Redis back. At most `maxInFlight`
 * Redis operations wait at a time; more use memory. Every change of state is logged once.
 *
 * What a timed-out operation means: Redis may still carry it out later. An admit that Redis grants
 * after we stopped waiting is undone (its leases released, its rate events refunded), since the
 * session went on with memory's answer; a counter increment (`incr`) may count in both places (at
 * least once); cache writes and reads have no lasting effect.
 */
import path from 'node:path';
import { StoreError, errorMessage } from './errors';
import { RedisStore, type RedisLike } from './redis-store';
import { MemoryStore, type AdmitResult, type Clock, type LeaseResult, type LeaseSpec, type RateSpec, type SetChange, type SetEntry, type SetSnapshot, type Store, systemClock } from './store';

export interface StoreLog {
  warn(msg: string): void;
  info(msg: string): void;
}

export interface RedisClient extends RedisLike {
  connect(): Promise<unknown>;
  on(event: string, fn: (...args: unknown[]) => void): unknown;
  destroy?(): void;
  disconnect?(): Promise<void>;
}

export interface RedisEndpoint {
  socket: { host?: string; port?: number | string; path?: string; [k: string]: unknown };
  database?: number | string;
  [k: string]: unknown;
}

export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(onTimeout()), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** node-redis v5 as haraka-plugin-redis ships it (the instance's top-level `redis` may be another major). */
function redisModule(): { createClient(opts: Record<string, unknown>): RedisClient } {
  const base = path.dirname(require.resolve('haraka-plugin-redis'));
  return require(require.resolve('redis', { paths: [base] })) as { createClient(opts: Record<string, unknown>): RedisClient };
}

/**
 * A node-redis client for `endpoint` that never queues commands while offline and reconnects with
 * back-off (`reconnect: false` for one-shot tools, which should fail rather than wait).
 */
export function createRedisClient(endpoint: RedisEndpoint, opts: { reconnect?: boolean; connectTimeoutMs?: number } = {}): RedisClient {
  return redisModule().createClient({
    // CLIENT LIST names the suite's connections (and which process holds them)
    name: `haraka-shield:${process.pid}`,
    ...endpoint,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: opts.connectTimeoutMs ?? 2000,
      ...endpoint.socket,
      reconnectStrategy: opts.reconnect === false ? false : (retries: number) => Math.min(100 * 2 ** Math.min(retries, 6), 5000),
    },
  });
}

/** redis.ini as haraka-plugin-redis reads it: its [server] section, normalised by that plugin. */
export function redisEndpointFromIni(ini: unknown): RedisEndpoint {
  const hpr = require('haraka-plugin-redis') as { normalize_redis_ini(raw: unknown): { server: RedisEndpoint } };
  return hpr.normalize_redis_ini(ini ?? {}).server;
}

export function describeEndpoint(ep: RedisEndpoint): string {
  const s = ep.socket;
  const where = s.path ? String(s.path) : `${s.host ?? '127.0.0.1'}:${s.port ?? 6379}`;
  return `redis://${where}${ep.database !== undefined ? `/${ep.database}` : ''}`;
}

export interface ResilientOptions {
  prefix: string;
  timeoutMs: number;
  /** after a failure, use memory this long before one operation probes Redis again (default 5 s) */
  retryAfterMs?: number;
  /** Redis operations waiting at once; more use memory (default 500) */
  maxInFlight?: number;
  now?: Clock;
}

type Route = 'redis' | 'probe' | 'memory';

export class ResilientStore implements Store {
  readonly memory: MemoryStore;
  private redis: RedisStore | null = null;
  private client: RedisClient | null = null;
  private up = false;
  private announcedDown = false;
  private endpoint = '';
  /** breaker: memory only until then (ms since the epoch) */
  private openUntil = 0;
  private probing = false;
  private inFlight = 0;
  private saturatedLogged = false;
  private readonly retryAfterMs: number;
  private readonly maxInFlight: number;

  constructor(
    private readonly log: StoreLog,
    private readonly opts: ResilientOptions,
  ) {
    this.memory = new MemoryStore(opts.now ?? systemClock);
    this.retryAfterMs = opts.retryAfterMs ?? 5000;
    this.maxInFlight = opts.maxInFlight ?? 500;
  }

  get backend(): 'memory' | 'redis' {
    return this.redis && this.client?.isReady && this.up ? 'redis' : 'memory';
  }

  /** resolves true once Redis is in use (its first PING answered), false after `timeoutMs` */
  async whenUp(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (!this.up && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    return this.up;
  }

  /** where the next operation goes: Redis, Redis as the breaker's one probe, or memory */
  private route(): Route {
    if (!this.redis || !this.client?.isReady) return 'memory';
    if (!this.up) {
      if (this.probing || Date.now() < this.openUntil) return 'memory';
      return 'probe';
    }
    if (this.inFlight >= this.maxInFlight) {
      if (!this.saturatedLogged) {
        this.saturatedLogged = true;
        this.log.warn(`shared store: ${this.inFlight} Redis operations waiting at once; further ones use this node's memory until fewer are waiting`);
      }
      return 'memory';
    }
    if (this.saturatedLogged && this.inFlight < this.maxInFlight / 2) {
      this.saturatedLogged = false;
      this.log.info('shared store: Redis keeps up again');
    }
    return 'redis';
  }

  /** run `attempt` on Redis within the timeout; the breaker learns from the outcome */
  private async onRedis<T>(route: Route, attempt: Promise<T>, timeoutMs = this.opts.timeoutMs): Promise<T> {
    if (route === 'probe') this.probing = true;
    this.inFlight++;
    try {
      const v = await withTimeout(attempt, timeoutMs, () => new StoreError('STORE_TIMEOUT', `Redis did not answer in ${timeoutMs} ms`));
      this.markUp();
      return v;
    } catch (err) {
      this.markDown(err);
      throw err;
    } finally {
      this.inFlight--;
      if (route === 'probe') this.probing = false;
    }
  }

  /**
   * Start connecting to Redis and return at once. Until the client is ready (and whenever it is not)
   * operations use memory. Reconnects with back-off forever; commands never queue while offline.
   */
  connect(endpoint: RedisEndpoint): void {
    if (this.client) return;
    this.endpoint = describeEndpoint(endpoint);
    const client = createRedisClient(endpoint);
    this.attach(client);
    client.connect().catch((err: unknown) => this.markDown(err));
  }

  /** use an already created client (tests, CLI) */
  attach(client: RedisClient): void {
    this.client = client;
    this.redis = new RedisStore(client, this.opts.prefix);
    // a (re)connected client is tried at once: a PING that answers in time marks Redis up
    client.on('ready', () => {
      this.openUntil = 0;
      if (this.probing || this.client !== client) return;
      this.onRedis('probe', client.sendCommand(['PING'])).catch(() => undefined);
    });
    client.on('error', (err: unknown) => this.markDown(err));
    client.on('end', () => this.markDown(new Error('connection closed')));
    // starting without Redis is worth one line, whether or not it ever comes
    setTimeout(() => {
      if (!this.up && !this.announcedDown) this.markDown(new Error('not reachable'));
    }, 3000).unref();
  }

  async close(): Promise<void> {
    // closing is not an outage: no "unavailable" line for it
    this.announcedDown = true;
    const c = this.client;
    this.client = null;
    this.redis = null;
    this.memory.close();
    if (!c) return;
    try {
      if (c.destroy) c.destroy();
      else await c.disconnect?.();
    } catch {
      /* closing a dead client may throw; nothing to do */
    }
  }

  private markUp(): void {
    if (this.up) return;
    this.up = true;
    this.announcedDown = false;
    this.log.info(`shared store: using Redis at ${this.endpoint || 'redis.ini'}`);
  }

  private markDown(err: unknown): void {
    this.up = false;
    this.openUntil = Date.now() + this.retryAfterMs;
    if (this.announcedDown) return;
    this.announcedDown = true;
    const why = errorMessage(err);
    this.log.warn(`shared store: Redis at ${this.endpoint || 'redis.ini'} unavailable (${why}); using this node's memory until it is back`);
  }

  private async run<T>(op: (s: Store) => Promise<T>): Promise<T> {
    const r = await this.shared(op);
    return r ? r.value : op(this.memory);
  }

  /**
   * Run `op` on Redis only: `{ value }` when Redis answered (within `timeoutMs`, default the store's
   * timeout: a long read such as a list snapshot gets its own), null when it is not configured, not
   * connected or failed (then marked down). For readers that must tell the fleet's view from this
   * node's fallback memory (e.g. list snapshots that should survive an outage).
   */
  async shared<T>(op: (s: Store) => Promise<T>, timeoutMs?: number): Promise<{ value: T } | null> {
    const redis = this.redis;
    const route = this.route();
    if (!redis || route === 'memory') return null;
    // a long read (a list snapshot) never is the breaker's probe: it would keep Redis unused for
    // its whole timeout after a recovery
    if (route === 'probe' && timeoutMs !== undefined && timeoutMs > this.opts.timeoutMs) return null;
    try {
      return { value: await this.onRedis(route, op(redis), timeoutMs) };
    } catch {
      return null;
    }
  }

  incr(key: string, by: number, ttlSec: number): Promise<number> {
    return this.run((s) => s.incr(key, by, ttlSec));
  }
  getCount(key: string): Promise<number> {
    return this.run((s) => s.getCount(key));
  }
  leaseAcquire(key: string, id: string, ttlSec: number, max: number): Promise<LeaseResult> {
    return this.run((s) => s.leaseAcquire(key, id, ttlSec, max));
  }
  /**
   * Admit on Redis, or on memory when Redis is not there or does not answer in time. Redis may still
   * carry out an admit after we stopped waiting for it: a lease it grants then is held by nobody, so
   * it is given back as soon as the late answer arrives (the session holds the memory one).
   */
  async admit(id: string, leases: readonly LeaseSpec[], leaseTtlSec: number, rates: readonly RateSpec[]): Promise<AdmitResult> {
    const redis = this.redis;
    const route = this.route();
    if (!redis || route === 'memory') return this.memory.admit(id, leases, leaseTtlSec, rates);
    const attempt = redis.admit(id, leases, leaseTtlSec, rates);
    try {
      return await this.onRedis(route, attempt);
    } catch {
      // undone if Redis carries it out after all: the session goes on with memory's answer
      attempt.then(
        (late) => {
          if (late.admitted) redis.admitUndo(id, leases, rates).catch(() => undefined);
        },
        () => undefined,
      );
      return this.memory.admit(id, leases, leaseTtlSec, rates);
    }
  }
  leaseRefreshMany(keys: readonly string[], id: string, ttlSec: number): Promise<void> {
    return this.run((s) => s.leaseRefreshMany(keys, id, ttlSec));
  }
  /** released where it may be: Redis and this node's memory (an admit or refresh may have fallen back to it) */
  async leaseReleaseMany(keys: readonly string[], id: string): Promise<void> {
    await Promise.all([this.memory.leaseReleaseMany(keys, id), this.shared((s) => s.leaseReleaseMany(keys, id))]);
  }
  setPut(key: string, member: string, value: string, ttlSec: number | null): Promise<void> {
    return this.run((s) => s.setPut(key, member, value, ttlSec));
  }
  setDelete(key: string, member: string): Promise<boolean> {
    return this.run((s) => s.setDelete(key, member));
  }
  setEntries(key: string): Promise<SetEntry[]> {
    return this.run((s) => s.setEntries(key));
  }
  setSnapshot(key: string): Promise<SetSnapshot> {
    return this.run((s) => s.setSnapshot(key));
  }
  setChanges(key: string, since: number, max: number): Promise<{ version: number; changes: SetChange[] } | null> {
    return this.run((s) => s.setChanges(key, since, max));
  }
  cacheGetMany(keys: readonly string[]): Promise<Array<string | null>> {
    return this.run((s) => s.cacheGetMany(keys));
  }
  cacheSetMany(entries: ReadonlyArray<{ key: string; value: string; ttlSec: number }>): Promise<void> {
    return this.run((s) => s.cacheSetMany(entries));
  }
}
