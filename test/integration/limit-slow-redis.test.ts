/**
 * leases when Redis is slower than [store] timeout (the shipped 250 ms), so an
 * admit falls back to memory while the same admit still lands in Redis later.
 */
import assert from 'node:assert/strict';
import { until, useHaraka } from '../helpers/env';
import { uniquePrefix } from '../helpers/haraka';
import { zcard as zcardOf } from '../helpers/redis-server';
import { SmtpClient, announceAndHangUp, nextSource, type SmtpReply } from '../helpers/smtp';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('leases with a Redis slower than the store timeout (integration)', function () {
  this.timeout(60000);
  const prefix = uniquePrefix();
  const env = useHaraka({
    plugins: ['shield.relay', 'shield.limit', 'queue/discard'],
    slowRedis: true,
    prefix,
    // the shipped store timeout (250 ms): a 600 ms Redis makes every admit fall back to memory
    files: {
      'shield.relay.ini': '[main]\ndomains = example.com\n',
      'shield.limit.ini': '[main]\nlease_refresh = 5s\n\n[concurrency]\nconc_node = 3\nconc_ip = 1\n',
    },
  });
  const zcard = (key: string) => zcardOf(`${prefix}${key}`);
  const connect = (ip: string) => SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: ip });

  it('clients hanging up mid-connect on the default store timeout leave no lease and no node count behind', async () => {
    env.slowRedis!.delayMs = 600;
    await Promise.all(Array.from({ length: 5 }, () => announceAndHangUp(env.haraka.port, '198.18.84.1', 100)));
    await sleep(2500);
    env.slowRedis!.delayMs = 0;
    await until('Redis leases of the departed clients released', async () => zcard('limit:conc:ip:198.18.84.1') === 0, 5000);
    const conns = await Promise.all(['198.18.84.2', '198.18.84.3', '198.18.84.4'].map(connect));
    assert.deepEqual(conns.map((c) => c.greeting.code), [220, 220, 220], conns.map((c) => c.greeting.text).join('\n'));
    await Promise.all(conns.map((c) => c.quit()));
  });

  /**
   * 1. Redis is slow: the admit falls back to memory (a memory lease) and lands in Redis later;
   * 2. Redis is fast again, the client leaves: its lease is released;
   * 3. Redis is slow again, the same client comes back alone. Returns both greetings.
   */
  async function slowFastSlow(ip: string): Promise<{ first: SmtpReply; second: SmtpReply }> {
    env.slowRedis!.delayMs = 600;
    const a = await connect(ip);
    await sleep(1500);
    env.slowRedis!.delayMs = 0;
    await a.quit();
    await until('the Redis lease of the first connection to go', async () => zcard(`limit:conc:ip:${ip}`) === 0, 5000);
    env.slowRedis!.delayMs = 600;
    const b = await connect(ip);
    await b.quit();
    await sleep(1500);
    env.slowRedis!.delayMs = 0;
    return { first: a.greeting, second: b.greeting };
  }

  it('a client alone on its address is never refused conc_ip = 1 because Redis was slow once before', async () => {
    const ip = '198.18.84.10';
    const { first, second } = await slowFastSlow(ip);
    assert.equal(first.code, 220, first.text);
    assert.equal(second.code, 220, `nobody else is connected from ${ip}: ${second.text}`);
  });

  it('a lease Redis grants after the memory fallback refused the client does not keep the address out', async () => {
    const ip = '198.18.84.20';
    // a memory lease left behind by a fast release, then a refused fallback admit
    await slowFastSlow(ip);
    await sleep(300);
    // Redis is healthy now and nobody is connected from ip
    const leases = zcard(`limit:conc:ip:${ip}`);
    const c = await connect(ip);
    await c.quit();
    assert.equal(c.greeting.code, 220, `Redis healthy, no client connected, ZCARD=${leases}: ${c.greeting.text}`);
  });
});
