/**
 * shield.rdns through a real Haraka, the DNS fixture and a real SMTP client announcing public
 * addresses with the PROXY protocol.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { until, useHaraka } from '../helpers/env';
import { SmtpClient, assertReply, nextSource, session } from '../helpers/smtp';

const PLUGINS = ['test.auth', 'shield.relay', 'shield.rdns', 'test.capture', 'queue/discard'];
// 2587: an extra exempt port, since Haraka itself asks for AUTH before MAIL on 587 and 465
const RDNS_INI = `[main]
our_names = mx.example.com
exempt_ports = 587, 465, 2587

[actions]
fcrdns = reject
helo_literal = reject
`;
const MESSAGE = 'From: a@example.org\nTo: b@example.com\nSubject: test\n\nhello\n';

describe('shield.rdns (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({
    plugins: PLUGINS,
    zones: {
      '1.11.18.198.in-addr.arpa': { PTR: ['mx.good.example.com'] },
      'mx.good.example.com': { A: ['198.18.11.1'] },
      '3.11.18.198.in-addr.arpa': { PTR: ['forged.example.net'] },
      'forged.example.net': { A: ['192.0.2.99'] },
      '4.11.18.198.in-addr.arpa': { PTR: ['slow.example.net'] },
      'slow.example.net': { drop: true },
      '5.11.18.198.in-addr.arpa': { drop: true },
      '6.11.18.198.in-addr.arpa': { PTR: ['198-18-11-6.dyn.example.net'] },
      '198-18-11-6.dyn.example.net': { A: ['198.18.11.6'] },
      '1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.2.ip6.arpa': { PTR: ['mx6.good.example.com'] },
      'mx6.good.example.com': { AAAA: ['2001:2::11'] },
      'out.good.example.com': { A: ['198.18.11.7'] },
    },
    files: { 'shield.relay.ini': '[main]\ndomains = example.com\n', 'shield.rdns.ini': RDNS_INI },
  });

  const conn = (proxyFrom: string, proxyPort?: number) => ({ port: env.haraka.port, localAddress: nextSource(), proxyFrom, proxyPort });

  it('accepts a client with forward-confirmed rDNS and a matching HELO (IPv4 and IPv6)', async () => {
    const r = await session({ ...conn('198.18.11.1'), helo: 'mx.good.example.com', from: 'a@example.org', rcpts: ['b@example.com'], message: MESSAGE });
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    assert.equal(r.data?.code, 250);
    await env.haraka.waitFor(/shield summary ip=198\.18\.11\.1 .*rdns\.fcrdns=pass:confirmed.*helo\.match=pass/);
    const r6 = await session({ ...conn('2001:2::11'), helo: 'mx6.good.example.com', from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.equal(r6.rcpts[0]?.code, 250, r6.rcpts[0]?.text);
    await env.haraka.waitFor(/captured iprev: pass 198\.18\.11\.1 mx\.good\.example\.com$/m);
    // an IPv4-mapped client is the IPv4 client: its PTR is asked in in-addr.arpa and confirmed by the A record
    const mapped = await session({ ...conn('::ffff:198.18.11.1'), helo: 'mx.good.example.com', from: 'a@example.org', rcpts: ['b@example.com'], message: MESSAGE });
    assert.equal(mapped.rcpts[0]?.code, 250, mapped.rcpts[0]?.text);
    await env.haraka.waitFor(/shield summary ip=(::ffff:)?198\.18\.11\.1 .*rdns\.fcrdns=pass:confirmed/);
  });

  it('refuses a client without PTR at RCPT with 550 5.7.25', async () => {
    const r = await session({ ...conn('198.18.11.2'), helo: 'mx.good.example.com', from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.equal(r.mail.code, 250, 'the verdict waits for RCPT');
    assertReply(r.rcpts[0], 550, '5.7.25', 'no PTR');
    assert.match(r.rcpts[0]!.text, /198\.18\.11\.2 has no PTR record/);
  });

  it('refuses a PTR that does not resolve back (fcrdns = reject here) with 550 5.7.25', async () => {
    const r = await session({ ...conn('198.18.11.3'), helo: 'forged.example.net', from: 'a@example.org', rcpts: ['b@example.com'] });
    assertReply(r.rcpts[0], 550, '5.7.25', 'not confirmed');
    assert.match(r.rcpts[0]!.text, /forged\.example\.net\) does not resolve back to 198\.18\.11\.3/);
  });

  it('DNS timeouts give 450 4.7.25, never a 5xx, within the configured timeout', async () => {
    for (const ip of ['198.18.11.4', '198.18.11.5']) {
      const t0 = Date.now();
      const r = await session({ ...conn(ip), helo: 'mx.good.example.com', from: 'a@example.org', rcpts: ['b@example.com'] });
      assertReply(r.rcpts[0], 450, '4.7.25', `DNS timeout for ${ip}`);
      assert.ok(Date.now() - t0 < 4000, `${ip} took ${Date.now() - t0} ms`);
    }
  });

  it('a generic PTR is tagged by default, not refused', async () => {
    const r = await session({ ...conn('198.18.11.6'), helo: '198-18-11-6.dyn.example.net', from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    await env.haraka.waitFor(/shield summary ip=198\.18\.11\.6 .*rdns\.generic=fail:embeds_address.*tags=rdns\.generic:embeds_address/);
  });

  for (const [helo, what, pattern] of [
    ['localhost', 'single-label HELO', /HELO\/EHLO localhost is not a fully qualified domain name/],
    ['198.18.11.1', 'bare IP HELO', /HELO\/EHLO 198\.18\.11\.1 is not a fully qualified domain name or an address literal/],
    ['[198.18.11.9]', 'literal of another address', /HELO\/EHLO \[198\.18\.11\.9\] is not your address 198\.18\.11\.1/],
    ['mx.example.com', 'our host name', /HELO\/EHLO mx\.example\.com is this server's own name or address/],
    ['example.com', 'our local domain (shield.relay)', /HELO\/EHLO example\.com is this server's own name/],
    ['MX.Example.COM.', 'our host name in upper case with a trailing dot', /HELO\/EHLO MX\.Example\.COM\. is this server's own name or address/],
    ['Example.Com', 'our local domain in mixed case', /HELO\/EHLO Example\.Com is this server's own name/],
    ['[198.18.255.25]', 'our address', /is this server's own name or address/],
  ] as const) {
    it(`refuses ${what} (${helo}) with 550 5.7.1 at RCPT`, async () => {
      const r = await session({ ...conn('198.18.11.1'), helo, from: 'a@example.org', rcpts: ['b@example.com'] });
      assert.equal(r.ehlo.code, 250, 'HELO itself is answered normally');
      assertReply(r.rcpts[0], 550, '5.7.1', what);
      assert.match(r.rcpts[0]!.text, pattern);
    });
  }

  it('a local domain added to shield.relay while it runs is our name at once (published by shield.relay, not re-read)', async () => {
    const helo = 'newly-ours.example.org';
    const first = await session({ ...conn('198.18.11.1'), helo, from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.equal(first.rcpts[0]?.code, 250, 'not ours yet: only a HELO mismatch (tag)');
    fs.writeFileSync(path.join(env.haraka.dir, 'config', 'shield.relay.domains'), 'newly-ours.example.org\n');
    await until(
      'shield.relay to reload its domains',
      async () => (await session({ ...conn('198.18.11.1'), helo, from: 'a@example.org', rcpts: ['b@example.com'] })).rcpts[0]?.code === 550,
      15000,
      500,
    );
    const r = await session({ ...conn('198.18.11.1'), helo, from: 'a@example.org', rcpts: ['b@example.com'] });
    assertReply(r.rcpts[0], 550, '5.7.1', 'HELO with a domain that became ours');
    assert.match(r.rcpts[0]!.text, /is this server's own name or address/);
  });

  it('accepts the client\'s own address literal', async () => {
    const r = await session({ ...conn('198.18.11.1'), helo: '[198.18.11.1]', from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
  });

  it('judges the first HELO: a second, clean EHLO does not clear a failed one', async () => {
    const c = await SmtpClient.connect(conn('198.18.11.1'));
    try {
      assert.equal((await c.cmd('EHLO localhost')).code, 250);
      assert.equal((await c.cmd('EHLO mx.good.example.com')).code, 250);
      assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
      assertReply(await c.cmd('RCPT TO:<b@example.com>'), 550, '5.7.1', 'after re-HELO');
      // nor does a new transaction
      await c.cmd('RSET');
      assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
      assertReply(await c.cmd('RCPT TO:<b@example.com>'), 550, '5.7.1', 'after RSET');
    } finally {
      await c.quit();
    }
  });

  it('a laptop without rDNS and with a bare HELO is accepted after AUTH, and may relay', async () => {
    const r = await session({ ...conn('198.18.11.2'), helo: 'LAPTOP-7QK2', auth: ['alice', 'wonderland'], from: 'alice@example.com', rcpts: ['friend@other.example'], message: MESSAGE });
    assert.equal(r.auth?.code, 235, r.auth?.text);
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    assert.equal(r.data?.code, 250);
  });

  it('the same laptop without AUTH is refused on port 25, but exempt on an exempt port', async () => {
    const r25 = await session({ ...conn('198.18.11.2'), helo: 'LAPTOP-7QK2', from: 'alice@example.com', rcpts: ['b@example.com'] });
    assertReply(r25.rcpts[0], 550, '5.7.1', 'bare HELO on port 25');
    const r587 = await session({ ...conn('198.18.11.2', 2587), helo: 'LAPTOP-7QK2', from: 'alice@example.com', rcpts: ['b@example.com'] });
    assert.equal(r587.mail.code, 250, r587.mail.text);
    assert.equal(r587.rcpts[0]?.code, 250, r587.rcpts[0]?.text);
    await env.haraka.waitFor(/rdns=skip:submission_port/);
  });

  it('a client reconnecting within the TTL costs no DNS query', async () => {
    await session({ ...conn('198.18.11.1'), helo: 'out.good.example.com', from: 'a@example.org', rcpts: ['b@example.com'] });
    const before = env.dns.queries.length;
    const r = await session({ ...conn('198.18.11.1'), helo: 'out.good.example.com', from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    assert.equal(env.dns.queries.length - before, 0, JSON.stringify(env.dns.queries.slice(before)));
  });
});

describe('shield.rdns enforce_at = mail, dns_error = ignore (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({
    plugins: PLUGINS,
    zones: { '5.12.18.198.in-addr.arpa': { drop: true }, '6.12.18.198.in-addr.arpa': { PTR: ['slow.example.net'] }, 'slow.example.net': { drop: true } },
    files: { 'shield.relay.ini': '[main]\ndomains = example.com\n', 'shield.rdns.ini': '[main]\nenforce_at = mail\ndns_error = ignore\n' },
  });

  it('gives the verdict at MAIL', async () => {
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.12.2', helo: 'mx.good.example.com', from: 'a@example.org', rcpts: [] });
    assertReply(r.mail, 550, '5.7.25', 'no PTR at MAIL');
  });

  it('with dns_error = ignore, a DNS timeout lets the mail through and is recorded as err', async () => {
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.12.5', helo: 'mx.good.example.com', from: 'a@example.org', rcpts: ['b@example.com'], message: MESSAGE });
    assert.equal(r.mail.code, 250, r.mail.text);
    assert.equal(r.data?.code, 250);
    await env.haraka.waitFor(/shield summary ip=198\.18\.12\.5 .*rdns\.ptr=err:dns_error/);
  });

  it('a forward lookup that times out leaves iprev = temperror for other plugins, never fail', async () => {
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.12.6', helo: 'mx.good.example.com', from: 'a@example.org', rcpts: ['b@example.com'], message: MESSAGE });
    assert.equal(r.data?.code, 250, r.data?.text);
    await env.haraka.waitFor(/shield summary ip=198\.18\.12\.6 .*rdns\.fcrdns=err:dns_error/);
    await env.haraka.waitFor(/captured iprev: temperror 198\.18\.12\.6 slow\.example\.net$/m);
  });
});
