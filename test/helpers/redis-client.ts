/**
 * A node-redis client for unit tests (the v5 that haraka-plugin-redis ships, as the suite uses it):
 * no reconnects, no offline queue, errors swallowed (a test asserts what it needs). `dropKeys`
 * removes a test's keys by prefix.
 */
import path from 'node:path';
import type { RedisClient } from '../../plugins/shield/core/shared-store';

export type TestRedisClient = RedisClient & { destroy(): void };

export function redisClient(port = 6379): TestRedisClient {
  const base = path.dirname(require.resolve('haraka-plugin-redis'));
  const redis = require(require.resolve('redis', { paths: [base] })) as { createClient(o: unknown): TestRedisClient };
  const c = redis.createClient({ socket: { host: '127.0.0.1', port, reconnectStrategy: false }, disableOfflineQueue: true });
  c.on('error', () => undefined);
  return c;
}

export async function dropKeys(c: RedisClient, prefix: string): Promise<void> {
  const keys = (await c.sendCommand(['KEYS', `${prefix}*`])) as string[];
  if (keys.length) await c.sendCommand(['DEL', ...keys]);
}
