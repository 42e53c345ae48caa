/**
 * What names chosen by the client cost (issue 12, defect 5), through a real Haraka with shield.limit
 * and shield.dnsbl, the DNS fixture and the machine's Redis: a client looping RSET + MAIL FROM with
 * a new sender domain each time is cut off by max_mails, asks the DNS about at most max_names names
 * per connection, and adds at most cache_names answers to Redis however often it reconnects.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { useHaraka, until } from '../helpers/env';
import { SmtpClient, assertReply, nextSource, session, type SmtpReply } from '../helpers/smtp';

const PLUGINS = ['test.auth', 'shield.relay', 'shield.limit', 'shield.dnsbl', 'queue/discard'];
const DBL_ZONE = 'dbl.example.net';
// max_names and max_mails keep their defaults (10 and 50); the cache budget is set below 4 x 10
const CACHE_NAMES = 15;
const DNSBL = `[main]
zones = dbl
threshold = 1
health_interval = 0
cache_names = ${CACHE_NAMES}/1h

[dbl]
type = domain
zone = ${DBL_ZONE}
listed[] = 127.0.1.2 dbl 1
test_listed =
test_unlisted =
`;
const MESSAGE = 'From: a@example.org\nTo: b@example.com\nSubject: test\n\nhello\n';

function redisKeys(pattern: string): string[] {
  return execFileSync('redis-cli', ['-p', '6379', '--scan', '--pattern', pattern], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

describe('shield.dnsbl + shield.limit: names chosen by the client (integration)', function () {
  this.timeout(60000);
  const env = useHaraka({
    plugins: PLUGINS,
    zones: { [`example.net.${DBL_ZONE}`]: { A: ['127.0.1.2'] } },
    files: { 'shield.relay.ini': '[main]\ndomains = example.com\n', 'shield.dnsbl.ini': DNSBL },
  });
  const connect = (proxyFrom: string) => SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom });
  const dblQueries = () => env.dns.queries.filter((q) => q.name.endsWith(`.${DBL_ZONE}`)).length;
  const cachedNames = () => redisKeys(`${env.prefix}dnsbl:a:${DBL_ZONE}:*`);
  const run = Date.now().toString(36);

  it('an attacker looping RSET + MAIL with 200 random sender domains: 421 4.7.0 after 50 MAILs, at most 10 names asked per connection, at most cache_names answers in Redis', async () => {
    const client = '198.18.80.1';
    const refusals: SmtpReply[] = [];
    let connections = 0;
    let c: SmtpClient | null = null;
    const queriesBefore = dblQueries();
    try {
      for (let i = 0; i < 200; i++) {
        if (!c) {
          c = await connect(client);
          connections++;
          assert.equal(c.greeting.code, 220, c.greeting.text);
          assert.equal((await c.cmd('EHLO client.example.org')).code, 250);
        } else {
          assert.equal((await c.cmd('RSET')).code, 250);
        }
        const r = await c.cmd(`MAIL FROM:<x@random-${i}-${run}.example>`);
        if (r.code === 250) continue;
        refusals.push(r);
        // the cap closes the connection: the client must reconnect (which conn_ip counts)
        await assert.rejects(c.cmd('NOOP'), /closed/);
        await c.quit();
        c = null;
      }
    } finally {
      await c?.quit();
    }
    // 200 MAILs = 3 connections of 50 accepted + 1 refused, and a fourth with the last 47
    assert.equal(connections, 4);
    assert.equal(refusals.length, 3);
    for (const r of refusals) {
      assertReply(r, 421, '4.7.0', 'the 51st MAIL of a connection');
      assert.equal(r.text, '421 4.7.0 Too many messages in one connection (limit 50); please reconnect to send more');
    }
    // DNS: per connection at most max_names = 10 names (the HELO's example.org and 9 sender domains)
    const asked = dblQueries() - queriesBefore;
    assert.ok(asked <= connections * 10, `${asked} DBL queries for ${connections} connections`);
    assert.ok(asked >= 10, `the first names are asked (${asked})`);
    await env.haraka.waitFor(/shield summary ip=198\.18\.80\.1 .*dnsbl=skip:name_budget/);
    // Redis: the shared cache got at most cache_names new names from this client's netblock, whatever the reconnects
    await new Promise((r) => setTimeout(r, 300));
    const keys = cachedNames();
    assert.ok(keys.length <= CACHE_NAMES, `${keys.length} dnsbl:a keys: ${keys.slice(0, 5).join(' ')}...`);
    assert.equal(keys.length, CACHE_NAMES, "the first 15 new names are cached (10 of the first connection, 5 of the second)");
    assert.ok(Number(execFileSync('redis-cli', ['-p', '6379', 'GET', `${env.prefix}dnsbl:names:198.18.80.0/24`], { encoding: 'utf8' }).trim()) >= CACHE_NAMES);
  });

  it('rotating through the /64s of one IPv6 /48 shares one cache_names budget (an end-user allocation holds 65,536 /64s)', async () => {
    const tag = `v6-${run}`;
    for (let net = 1; net <= 4; net++) {
      const c = await connect(`2a00:1450:4001:${net}::25`);
      try {
        assert.equal((await c.cmd('EHLO client.example.org')).code, 250);
        for (let i = 0; i < 9; i++) {
          await c.cmd('RSET');
          assert.equal((await c.cmd(`MAIL FROM:<x@${tag}-${net}-${i}.example>`)).code, 250);
        }
      } finally {
        await c.quit();
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    const keys = redisKeys(`${env.prefix}dnsbl:a:${DBL_ZONE}:${tag}-*`);
    assert.ok(keys.length <= CACHE_NAMES, `${keys.length} names cached for one /48 (budget ${CACHE_NAMES})`);
    assert.ok(keys.length >= 9, `the first names are cached (${keys.length})`);
  });

  it('a client under the caps is not affected: several transactions, each sender asked and the mail accepted', async () => {
    const c = await connect('198.18.81.2');
    try {
      assert.equal((await c.cmd('EHLO mta.example.org')).code, 250);
      for (let i = 0; i < 3; i++) {
        const before = env.dns.countFor(`sender-${i}-${run}.example.${DBL_ZONE}`);
        assert.equal((await c.cmd(`MAIL FROM:<news@sender-${i}-${run}.example>`)).code, 250);
        assert.equal((await c.cmd('RCPT TO:<b@example.com>')).code, 250);
        assert.equal((await c.data(MESSAGE)).code, 250);
        assert.equal(env.dns.countFor(`sender-${i}-${run}.example.${DBL_ZONE}`), before + 1, `sender ${i} asked`);
      }
    } finally {
      await c.quit();
    }
    // its names went to the shared cache (its own budget, not the attacker's)
    await until('the names cached', async () => redisKeys(`${env.prefix}dnsbl:a:${DBL_ZONE}:sender-*-${run}.example`).length === 3);
  });

  it('a listed sender domain is still refused with 550 5.7.1, and past the budget when the fleet has its answer cached', async () => {
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.82.3', from: 'x@news.example.net', rcpts: ['b@example.com'] });
    assertReply(r.rcpts[0], 550, '5.7.1', 'listed sender domain');
    assert.match(r.rcpts[0]!.text, /the sender domain example\.net is listed by dbl/);
    await until('example.net in the shared cache', async () => redisKeys(`${env.prefix}dnsbl:a:${DBL_ZONE}:example.net`).length === 1);
    // another client spends its 10 names first; the listed domain is then read from the shared cache
    const c = await connect('198.18.82.4');
    try {
      assert.equal((await c.cmd('EHLO client.example.org')).code, 250);
      for (let i = 0; i < 9; i++) {
        assert.equal((await c.cmd(`MAIL FROM:<x@filler-${i}-${run}.example>`)).code, 250);
        await c.cmd('RSET');
      }
      const queries = env.dns.countFor(`example.net.${DBL_ZONE}`);
      assert.equal((await c.cmd('MAIL FROM:<x@example.net>')).code, 250);
      assertReply(await c.cmd('RCPT TO:<b@example.com>'), 550, '5.7.1', 'listed sender domain past the name budget');
      assert.equal(env.dns.countFor(`example.net.${DBL_ZONE}`), queries, 'past the budget: no DNS query');
    } finally {
      await c.quit();
    }
    await env.haraka.waitFor(/shield summary ip=198\.18\.82\.4 .*dnsbl=skip:name_budget.*dnsbl=fail:listed/);
  });
});
