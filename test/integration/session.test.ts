/**
 * The Session through a real Haraka behind a trusted PROXY peer: one client identity per connection,
 * resources that cannot outlive their connection, and DNS faults that never become a 5xx. Each test
 * is an attack (or an accident) first.
 */
import assert from 'node:assert/strict';
import { until, useHaraka } from '../helpers/env';
import { uniquePrefix } from '../helpers/haraka';
import { zcard as zcardOf } from '../helpers/redis-server';
import { SmtpClient, announceAndHangUp, assertReply, nextSource, session } from '../helpers/smtp';

const MESSAGE = 'From: a@example.org\nTo: b@example.com\nSubject: test\n\nhello\n';

describe('Session: the client identity is pinned once per connection (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({
    plugins: ['test.auth', 'shield.relay', 'shield.blocklist', 'shield.limit', 'shield.rdns', 'queue/discard'],
    files: {
      // a relay network that an attacker would love to be in
      'shield.relay.ini': '[main]\ndomains = example.com\nnetworks = 10.0.0.0/8\n',
      'shield.blocklist.block': '198.18.81.0/24 blocked range\n',
      'shield.limit.ini': '[concurrency]\nconc_ip = 1\n',
      'shield.rdns.ini': '[main]\nexempt_ports = 25\n',
    },
  });
  const connect = (proxyFrom: string) => SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom });

  for (const [what, ip, before] of [
    ['after RSET', '198.18.80.11', ['EHLO client.example.org', 'RSET']],
    ['right after the greeting', '198.18.80.12', []],
    ['in the middle of a transaction', '198.18.80.13', ['EHLO client.example.org', 'MAIL FROM:<a@example.org>']],
  ] as const) {
    it(`a second PROXY line ${what} gets 421 4.7.0 and the connection is closed; it never relays`, async () => {
      const c = await connect(ip);
      try {
        assert.equal(c.greeting.code, 220);
        for (const line of before) assert.ok((await c.cmd(line)).code < 400, line);
        const r = await c.cmd(`PROXY TCP4 10.9.9.9 198.18.255.25 40000 25`);
        assertReply(r, 421, '4.7.0', 'second PROXY line');
        assert.match(r.text, /client address may be announced once/);
        await until('the connection to close', async () => c.isClosed, 3000);
      } finally {
        await c.quit();
      }
    });
  }

  it('the same address announced again is refused too (no re-run of the connect checks)', async () => {
    const c = await connect('198.18.80.2');
    try {
      assertReply(await c.cmd('PROXY TCP4 198.18.80.2 198.18.255.25 40001 25'), 421, '4.7.0', 'same address again');
    } finally {
      await c.quit();
    }
  });

  it('the summary line names the first identity, is logged once under [shield] with the connection uuid', async () => {
    const c = await connect('198.18.80.3');
    await c.cmd('EHLO client.example.org');
    await c.cmd('PROXY TCP4 10.9.9.10 198.18.255.25 40000 25').catch(() => undefined);
    await c.quit();
    await env.haraka.waitFor(/\[shield\] shield summary ip=198\.18\.80\.3 /);
    const lines = env.haraka.output.split('\n').filter((l) => / shield summary ip=(198\.18\.80\.3|10\.9\.9\.10) /.test(l));
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, /^\[INFO\] \[[0-9A-F-]{36}\] \[shield\] shield summary ip=198\.18\.80\.3 .*session=fail:identity_reannounced/);
  });

  it('a client rotating identities cannot hold more than its own concurrency slot', async () => {
    const a = await connect('198.18.80.4');
    const b = await connect('198.18.80.4');
    try {
      assert.equal(a.greeting.code, 220);
      assertReply(b.greeting, 421, '4.7.0', 'conc_ip = 1');
      // the first connection tries to leave its slot behind and become someone else
      assertReply(await a.cmd('PROXY TCP4 198.18.80.5 198.18.255.25 40000 25'), 421, '4.7.0', 'identity change');
    } finally {
      await Promise.all([a.quit(), b.quit()]);
    }
    // its slot is released with the session
    const ms = await until('the slot to be free', async () => {
      const c = await connect('198.18.80.4');
      await c.quit();
      return c.greeting.code === 220;
    });
    assert.ok(ms < 3000);
  });
});

describe('Session: leases belong to the session, even when granted after the client left (integration)', function () {
  this.timeout(40000);
  const prefix = uniquePrefix();
  const env = useHaraka({
    plugins: ['shield.relay', 'shield.limit', 'queue/discard'],
    slowRedis: true,
    prefix,
    // a store timeout longer than the slow Redis, so the admits really wait for it
    suite: { store: { timeout: '3s' } },
    files: {
      'shield.relay.ini': '[main]\ndomains = example.com\n',
      'shield.limit.ini': '[main]\nlease_refresh = 1s\n\n[concurrency]\nconc_node = 3\nconc_ip = 2\n',
    },
  });

  const zcard = async (key: string): Promise<number> => zcardOf(`${prefix}${key}`);

  it('clients that hang up while admit() waits on a slow Redis leave no lease and no node count behind', async () => {
    env.slowRedis!.delayMs = 600;
    // five clients announce themselves and hang up at once, while their admit is in flight
    await Promise.all(Array.from({ length: 5 }, () => announceAndHangUp(env.haraka.port, '198.18.82.1', 100)));
    // every admit has landed by now, and every one of them is released
    await new Promise((r) => setTimeout(r, 2500));
    env.slowRedis!.delayMs = 0;
    await until('the leases of the departed clients to be released', async () => (await zcard('limit:conc:ip:198.18.82.1')) === 0, 5000);
    // still 0 after the refresh timer ran a few times: nobody keeps refreshing them
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(await zcard('limit:conc:ip:198.18.82.1'), 0);
    // the node count came back to 0 too: conc_node = 3 admits three clients
    const conns = await Promise.all(['198.18.82.2', '198.18.82.3', '198.18.82.4'].map((ip) => SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: ip })));
    assert.deepEqual(
      conns.map((c) => c.greeting.code),
      [220, 220, 220],
      conns.map((c) => c.greeting.text).join('\n'),
    );
    await Promise.all(conns.map((c) => c.quit()));
    // and the client itself gets its two slots
    const own = await Promise.all([1, 2].map(() => SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.82.1' })));
    assert.deepEqual(own.map((c) => c.greeting.code), [220, 220]);
    await Promise.all(own.map((c) => c.quit()));
  });
});

describe('Session: evidence that needs an answer that did not come is err, never a 5xx (integration)', function () {
  this.timeout(40000);
  const env = useHaraka({
    plugins: ['shield.relay', 'shield.rdns', 'queue/discard'],
    zones: {
      // PTR times out; the HELO name resolves elsewhere
      '1.83.18.198.in-addr.arpa': { drop: true },
      // PTR answers, its forward lookup times out
      '2.83.18.198.in-addr.arpa': { PTR: ['slow-fwd.example.net'] },
      'slow-fwd.example.net': { drop: true },
      // PTR confirmed; the HELO name's own lookup times out
      '3.83.18.198.in-addr.arpa': { PTR: ['mx3.example.net'] },
      'mx3.example.net': { A: ['198.18.83.3'] },
      'slow-helo.example.org': { drop: true },
      'helo.example.org': { A: ['192.0.2.50'] },
    },
    files: {
      'shield.relay.ini': '[main]\ndomains = example.com\n',
      // every check that can reject does
      'shield.rdns.ini': '[actions]\nno_ptr = reject\nfcrdns = reject\ngeneric = reject\nhelo_syntax = reject\nhelo_literal = reject\nhelo_impersonation = reject\nhelo_mismatch = reject\n',
    },
  });

  for (const [ip, helo, what] of [
    ['198.18.83.1', 'helo.example.org', 'the PTR lookup times out'],
    ['198.18.83.2', 'helo.example.org', 'the forward lookup of the PTR name times out'],
    ['198.18.83.3', 'slow-helo.example.org', "the HELO name's lookup times out"],
  ] as const) {
    it(`${what}: 450, never 550`, async () => {
      const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: ip, helo, from: 'a@example.org', rcpts: ['b@example.com'] });
      assert.equal(r.rcpts[0]?.code, 450, r.rcpts[0]?.text);
      assert.match(r.rcpts[0]!.text, /^450 4\.7\.(25|1) /);
    });
  }

  it('postmaster@ and abuse@ of our domains are reachable for a client every rDNS check refuses; others are not', async () => {
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.83.9', helo: 'helo.example.org', from: 'a@example.org', rcpts: ['postmaster@example.com', 'Abuse@Example.com', 'b@example.com'], message: MESSAGE });
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    assert.equal(r.rcpts[1]?.code, 250, r.rcpts[1]?.text);
    assertReply(r.rcpts[2], 550, '5.7.25', 'no PTR');
    assert.equal(r.data?.code, 250);
  });
});

describe('Session: every DNS list lookup timing out never becomes a 5xx (integration)', function () {
  this.timeout(40000);
  const DROP = { drop: true } as const;
  const env = useHaraka({
    plugins: ['shield.relay', 'shield.dnsbl', 'queue/discard'],
    zones: {
      // the client's address on the IP zone, and its confirmed rDNS, HELO and sender domains on the domain zone
      '7.83.18.198.slowip.example.net': DROP,
      '7.83.18.198.in-addr.arpa': { PTR: ['mx7.example.net'] },
      'mx7.example.net': { A: ['198.18.83.7'] },
      'example.net.slowdom.example.net': DROP,
      'example.org.slowdom.example.net': DROP,
      'example.com.slowdom.example.net': DROP,
    },
    files: {
      'shield.relay.ini': '[main]\ndomains = example.com\n',
      'shield.dnsbl.ini': '[main]\nzones = slowip, slowdom\nthreshold = 0.5\nhealth_interval = 0\n\n[slowip]\nzone = slowip.example.net\n\n[slowdom]\ntype = domain\nzone = slowdom.example.net\n',
    },
  });

  it('the IP zone, the rDNS name, the HELO and the sender domain all time out: 250, the errors recorded', async () => {
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.83.7', helo: 'mx.example.org', from: 'a@example.com', rcpts: ['b@example.com'], message: MESSAGE });
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    assert.equal(r.data?.code, 250);
    await env.haraka.waitFor(/shield summary ip=198\.18\.83\.7 .*dnsbl=err:zone_error.*dnsbl=pass:clean/);
    // each of the four lookups was asked (and dropped)
    for (const q of ['7.83.18.198.slowip.example.net', 'example.net.slowdom.example.net', 'example.org.slowdom.example.net', 'example.com.slowdom.example.net']) {
      assert.ok(env.dns.countFor(q) > 0, `${q} was asked`);
    }
  });
});
