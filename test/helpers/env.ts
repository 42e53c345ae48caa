/**
 * The usual integration set-up in one call: a DNS fixture with the given zones, one or more Haraka
 * nodes (sharing one store prefix), optionally a private Redis to stop mid-test; all started in
 * mocha's `before` and stopped in `after`.
 */
import { DnsFixture, type ZoneEntry } from './dns-server';
import { startHaraka, uniquePrefix, type HarakaOptions, type HarakaProcess } from './haraka';
import { PrivateRedis } from './redis-server';
import { SlowProxy } from './slow-proxy';

export interface EnvOptions extends Omit<HarakaOptions, 'dns' | 'redisPort'> {
  /** DNS fixture zones (default: none, so every name is NXDOMAIN at once) */
  zones?: Record<string, ZoneEntry>;
  /** Haraka nodes on one store prefix (default 1) */
  nodes?: number;
  /** a private redis-server the test may stop; otherwise the machine's Redis on 6379 */
  privateRedis?: boolean;
  /** memory store instead of Redis */
  memory?: boolean;
  /** Haraka reaches Redis through a SlowProxy (env.slowRedis) whose delay the test sets */
  slowRedis?: boolean;
  /**
   * wait until each node uses Redis before the tests (default: whenever Redis is used, so that no
   * test runs on the memory store by accident while the connection is still being made)
   */
  waitForRedis?: boolean;
}

export interface Env {
  /** the first node */
  haraka: HarakaProcess;
  nodes: HarakaProcess[];
  dns: DnsFixture;
  redis: PrivateRedis | null;
  /** the delaying relay between Haraka and Redis (slowRedis) */
  slowRedis: SlowProxy | null;
  /** the store key prefix every node uses */
  prefix: string;
}

export function useHaraka(opts: EnvOptions): Env {
  const env = { nodes: [] as HarakaProcess[], redis: null as PrivateRedis | null, slowRedis: null as SlowProxy | null } as Env;
  before(async function () {
    this.timeout(30000);
    const { zones, nodes = 1, privateRedis, memory, slowRedis, waitForRedis = !memory, ...haraka } = opts;
    env.dns = await DnsFixture.start(zones ?? {});
    if (privateRedis) env.redis = await PrivateRedis.start();
    const prefix = haraka.prefix ?? uniquePrefix();
    env.prefix = prefix;
    if (slowRedis) env.slowRedis = await SlowProxy.start(env.redis?.port ?? 6379);
    const redisPort = memory ? null : (env.slowRedis?.port ?? env.redis?.port ?? 6379);
    env.nodes = await Promise.all(Array.from({ length: nodes }, () => startHaraka({ ...haraka, prefix, dns: env.dns.address, redisPort })));
    env.haraka = env.nodes[0] as HarakaProcess;
    if (waitForRedis) await Promise.all(env.nodes.map((n) => n.waitFor(/shared store: using Redis/)));
  });
  after(async function () {
    this.timeout(30000);
    await Promise.all(env.nodes.map((n) => n.stop()));
    await env.slowRedis?.close();
    await env.redis?.stop();
    await env.dns?.close();
  });
  return env;
}

/** poll `fn` until it holds; returns the ms it took */
export async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 5000, everyMs = 50): Promise<number> {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return Date.now() - t0;
}
