/**
 * shield.limit through a real Haraka and a real SMTP client; every client a distinct public
 * address announced with the PROXY protocol.
 */
import assert from 'node:assert/strict';
import { useHaraka } from '../helpers/env';
import { SmtpClient, assertReply, greet, nextSource, session } from '../helpers/smtp';

const PLUGINS = ['test.auth', 'shield.relay', 'shield.limit', 'queue/discard'];
const RELAY_INI = '[main]\ndomains = example.com\nnetworks = 198.18.30.0/24\n';
const LIMIT_INI = `[main]
tarpit = 300ms

[concurrency]
conc_ip = 2

[rates]
conn_ip = 5/1m
msg_ip = 2/1m
rcpt_ip = 4/1m
msg_user = 2/1h

[session]
max_rcpts = 3
max_rcpts_relay = 5
max_unrecognized = 3
max_errors = 4
`;
const MESSAGE = 'From: a@example.org\nTo: b@example.com\nSubject: test\n\nhello\n';

describe('shield.limit (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({
    plugins: PLUGINS,
    files: { 'shield.relay.ini': RELAY_INI, 'shield.limit.ini': LIMIT_INI, 'shield.limit.overrides': '198.18.40.0/24 conc_ip=off conn_ip=off\n' },
  });

  const connect = (proxyFrom: string, opts: { proxyPort?: number } = {}) => SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom, ...opts });

  it('admits conc_ip connections from one client and refuses the next with 421 4.7.0 (after the tarpit), then admits again when one closes', async () => {
    const a = await connect('198.18.20.1');
    const b = await connect('198.18.20.1');
    assert.equal(a.greeting.code, 220);
    assert.equal(b.greeting.code, 220);
    const t0 = Date.now();
    const c = await connect('198.18.20.1');
    assertReply(c.greeting, 421, '4.7.0', 'third connection');
    assert.match(c.greeting.text, /Too many connections from 198\.18\.20\.1 \(limit 2, conc_ip\)/);
    assert.ok(Date.now() - t0 >= 290, 'tarpit before the reply');
    await c.quit();
    assert.equal((await connect('198.18.20.2')).greeting.code, 220, 'another client is not affected');
    await a.quit();
    await new Promise((r) => setTimeout(r, 100));
    const d = await connect('198.18.20.1');
    assert.equal(d.greeting.code, 220, d.greeting.text);
    await Promise.all([b.quit(), d.quit()]);
  });

  it('counts IPv6 clients per /64', async () => {
    const a = await connect('2001:2:0:20::1');
    const b = await connect('2001:2:0:20::2');
    const c = await connect('2001:2:0:20::3');
    assert.equal(a.greeting.code, 220);
    assert.equal(b.greeting.code, 220);
    assertReply(c.greeting, 421, '4.7.0', 'third address of the same /64');
    assert.match(c.greeting.text, /2001:2:0:20::\/64/);
    assert.equal((await connect('2001:2:0:21::1')).greeting.code, 220, 'the next /64 is another client');
    await Promise.all([a.quit(), b.quit(), c.quit()]);
  });

  it('counts an IPv4-mapped IPv6 client as its IPv4 address (no second allowance through ::ffff:)', async () => {
    const a = await connect('198.18.20.9');
    const b = await connect('::ffff:198.18.20.9');
    const c = await connect('::ffff:198.18.20.9');
    try {
      assert.equal(a.greeting.code, 220);
      assert.equal(b.greeting.code, 220);
      assertReply(c.greeting, 421, '4.7.0', 'third connection, two of them through ::ffff:');
      assert.match(c.greeting.text, /Too many connections from 198\.18\.20\.9 \(limit 2, conc_ip\)/);
    } finally {
      await Promise.all([a.quit(), b.quit(), c.quit()]);
    }
  });

  it('limits the connection rate: conn_ip = 5/1m refuses the sixth with 421 4.7.0', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await greet(env.haraka.port, '198.18.21.1')).code, 220, `connection ${i + 1}`);
    const g = await greet(env.haraka.port, '198.18.21.1');
    assertReply(g, 421, '4.7.0', 'sixth connection');
    assert.match(g.text, /Connection rate limit exceeded for 198\.18\.21\.1 \(5 per 1m, conn_ip\); please try again in 1[0-2] s/);
  });

  it('limits messages per client: msg_ip = 2/1m answers the third MAIL with 451 4.7.1', async () => {
    const c = await connect('198.18.22.1');
    try {
      await c.cmd('EHLO client.example.org');
      for (let i = 0; i < 2; i++) {
        assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
        await c.cmd('RSET');
      }
      const r = await c.cmd('MAIL FROM:<a@example.org>');
      assertReply(r, 451, '4.7.1', 'third message');
      assert.match(r.text, /Message rate limit exceeded for 198\.18\.22\.1 \(2 per 1m, msg_ip\)/);
    } finally {
      await c.quit();
    }
  });

  it('limits recipients per message (452 4.5.3) and per client (451 4.7.1)', async () => {
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.23.1', from: 'a@example.org', rcpts: ['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com'], message: MESSAGE });
    assert.deepEqual(r.rcpts.slice(0, 3).map((x) => x.code), [250, 250, 250]);
    assertReply(r.rcpts[3], 452, '4.5.3', 'fourth recipient');
    assert.match(r.rcpts[3]!.text, /Too many recipients for one message \(limit 3\)/);
    assert.equal(r.data?.code, 250, 'the message goes to the accepted three');
    // three recipients counted against rcpt_ip = 4/1m: one more is fine, the next is not
    const r2 = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.23.1', from: 'a@example.org', rcpts: ['e@example.com', 'f@example.com'] });
    assert.equal(r2.rcpts[0]?.code, 250);
    assertReply(r2.rcpts[1], 451, '4.7.1', 'recipient rate');
    assert.match(r2.rcpts[1]!.text, /Recipient rate limit exceeded for 198\.18\.23\.1 \(4 per 1m, rcpt_ip\)/);
  });

  it('relay clients: no per-IP concurrency, and max_rcpts_relay instead of max_rcpts', async () => {
    const conns = await Promise.all([connect('198.18.30.5'), connect('198.18.30.5'), connect('198.18.30.5')]);
    assert.deepEqual(conns.map((c) => c.greeting.code), [220, 220, 220]);
    await Promise.all(conns.map((c) => c.quit()));
    const rcpts = Array.from({ length: 6 }, (_, i) => `r${i}@other.example`);
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.30.6', from: 'a@example.com', rcpts });
    assert.deepEqual(r.rcpts.slice(0, 5).map((x) => x.code), [250, 250, 250, 250, 250]);
    assertReply(r.rcpts[5], 452, '4.5.3', 'sixth recipient from a relay client');
  });

  it('authenticated users: per-user message rate instead of per-IP', async () => {
    const c = await connect('198.18.24.1');
    try {
      await c.cmd('EHLO laptop.example.com');
      assert.equal((await c.auth('alice', 'wonderland')).code, 235);
      for (let i = 0; i < 2; i++) {
        assert.equal((await c.cmd('MAIL FROM:<alice@example.com>')).code, 250, `message ${i + 1}`);
        await c.cmd('RSET');
      }
      const r = await c.cmd('MAIL FROM:<alice@example.com>');
      assertReply(r, 451, '4.7.1', 'third message of alice');
      assert.match(r.text, /for user alice \(2 per 1h, msg_user\)/);
    } finally {
      await c.quit();
    }
  });

  it('closes the connection after max_unrecognized unrecognized commands (421 4.7.0)', async () => {
    const c = await connect('198.18.25.1');
    assert.equal((await c.cmd('FOO')).code, 500);
    assert.equal((await c.cmd('BAR')).code, 500);
    assertReply(await c.cmd('BAZ'), 421, '4.7.0', 'third unrecognized command');
    await assert.rejects(c.cmd('NOOP'), /closed/);
  });

  it('closes the connection once max_errors protocol errors have piled up', async () => {
    const c = await connect('198.18.25.2');
    await c.cmd('EHLO client.example.org');
    // RCPT before MAIL: a protocol error Haraka counts
    for (let i = 0; i < 4; i++) assert.equal((await c.cmd('RCPT TO:<b@example.com>')).code, 503);
    const r = await c.cmd('EHLO client.example.org');
    assertReply(r, 421, '4.7.0', 'after four errors');
    assert.match(r.text, /Too many errors \(4\)/);
  });

  it('per-CIDR overrides lift limits for listed clients', async () => {
    const conns = await Promise.all([connect('198.18.40.9'), connect('198.18.40.9'), connect('198.18.40.9')]);
    assert.deepEqual(conns.map((c) => c.greeting.code), [220, 220, 220]);
    await Promise.all(conns.map((c) => c.quit()));
  });
});

describe('shield.limit with Redis stopped mid-run (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({
    plugins: PLUGINS,
    privateRedis: true,
    waitForRedis: true,
    files: { 'shield.relay.ini': RELAY_INI, 'shield.limit.ini': '[concurrency]\nconc_ip = 2\n' },
  });

  it('keeps mail flowing and limits enforced from memory, and says so once', async () => {
    const ok = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.26.1', from: 'a@example.org', rcpts: ['b@example.com'], message: MESSAGE });
    assert.equal(ok.data?.code, 250);
    await env.redis!.stop();
    for (let i = 0; i < 3; i++) {
      const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: `198.18.26.${10 + i}`, from: 'a@example.org', rcpts: ['b@example.com'], message: MESSAGE });
      assert.equal(r.greeting.code, 220, r.greeting.text);
      assert.equal(r.data?.code, 250, r.data?.text);
    }
    await env.haraka.waitFor(/shared store: Redis at .* unavailable/);
    assert.equal((env.haraka.output.match(/shared store: Redis at .* unavailable/g) ?? []).length, 1, 'one warning, not one per connection');
    // the node's own counts still hold the line
    const a = await SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.26.50' });
    const b = await SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.26.50' });
    const c = await SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.26.50' });
    assert.deepEqual([a.greeting.code, b.greeting.code, c.greeting.code], [220, 220, 421]);
    await Promise.all([a.quit(), b.quit(), c.quit()]);
    assert.ok(env.haraka.running);
  });
});

describe('shield.limit node, netblock and daily limits (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({
    plugins: PLUGINS,
    files: {
      'shield.relay.ini': RELAY_INI,
      'shield.limit.ini': '[concurrency]\nconc_node = 4\nconc_net = 3\nconc_ip = 0\n\n[rates]\nconn_ip = off\ndaily_ip = 3/1d\n',
    },
  });
  const connect = (proxyFrom: string) => SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom });

  it('conc_net counts a /24 together; conc_node caps this node whatever the clients', async () => {
    const net = [await connect('198.18.70.1'), await connect('198.18.70.2'), await connect('198.18.70.3')];
    assert.deepEqual(net.map((c) => c.greeting.code), [220, 220, 220]);
    const fourth = await connect('198.18.70.4');
    assertReply(fourth.greeting, 421, '4.7.0', 'fourth of the /24');
    assert.match(fourth.greeting.text, /Too many connections from your network \(limit 3, conc_net\)/);
    const other = await connect('198.18.71.1');
    assert.equal(other.greeting.code, 220, 'another /24');
    const fifth = await connect('198.18.72.1');
    assertReply(fifth.greeting, 421, '4.7.0', 'node full');
    assert.match(fifth.greeting.text, /Too many connections to this server right now \(limit 4\)/);
    await Promise.all([...net, fourth, other, fifth].map((c) => c.quit()));
  });

  it('daily_ip = 3/1d: the fourth connection of the day is refused', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await greet(env.haraka.port, '198.18.73.1')).code, 220, `connection ${i + 1}`);
    const g = await greet(env.haraka.port, '198.18.73.1');
    assertReply(g, 421, '4.7.0', 'fourth of the day');
    assert.match(g.text, /\(3 per 1d, daily_ip\); please try again in 2880\d s/);
  });
});

for (const exempt of [false, true]) {
  describe(`shield.limit with exempt_allowlisted = ${exempt}: a client on shield.blocklist's allow list (integration)`, function () {
    this.timeout(30000);
    const env = useHaraka({
      plugins: ['shield.relay', 'shield.blocklist', 'shield.limit', 'queue/discard'],
      files: {
        'shield.relay.ini': RELAY_INI,
        'shield.blocklist.allow': '198.18.46.0/24 partner\n',
        // the default is false: the false run writes nothing, so it tests the default itself
        'shield.limit.ini': `[main]\n${exempt ? 'exempt_allowlisted = true\n' : ''}\n[concurrency]\nconc_ip = 2\n\n[rates]\nconn_ip = 3/1m\n`,
      },
    });
    const connect = (proxyFrom: string) => SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom });

    it(exempt ? 'is exempt from conc_ip: a third simultaneous connection is admitted' : 'is still refused by conc_ip: the third simultaneous connection gets 421 4.7.0', async () => {
      const conns = [await connect('198.18.46.1'), await connect('198.18.46.1'), await connect('198.18.46.1')];
      try {
        assert.deepEqual(conns.slice(0, 2).map((c) => c.greeting.code), [220, 220]);
        if (exempt) assert.equal(conns[2]!.greeting.code, 220, conns[2]!.greeting.text);
        else {
          assertReply(conns[2]!.greeting, 421, '4.7.0', 'third connection of an allowlisted client');
          assert.match(conns[2]!.greeting.text, /conc_ip/);
        }
      } finally {
        await Promise.all(conns.map((c) => c.quit()));
      }
    });

    it(exempt ? 'is exempt from conn_ip: a fourth connection within the minute is admitted' : 'is still refused by conn_ip: the fourth connection within the minute gets 421 4.7.0', async () => {
      for (let i = 0; i < 3; i++) assert.equal((await greet(env.haraka.port, '198.18.46.2')).code, 220, `connection ${i + 1}`);
      const g = await greet(env.haraka.port, '198.18.46.2');
      if (exempt) assert.equal(g.code, 220, g.text);
      else {
        assertReply(g, 421, '4.7.0', 'fourth connection of an allowlisted client');
        assert.match(g.text, /conn_ip/);
      }
    });
  });
}
