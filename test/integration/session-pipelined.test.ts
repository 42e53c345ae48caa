/**
 * re-announced identities in more SMTP states, and client-written bytes in replies.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { until, useHaraka } from '../helpers/env';
import { SmtpClient, assertReply, nextSource } from '../helpers/smtp';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a second PROXY line never reaches another hook (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({
    plugins: ['shield.relay', 'shield.blocklist', 'shield.limit', 'shield.rdns', 'shield.dnsbl', 'queue/discard'],
    zones: {
      '1.85.18.198.in-addr.arpa': { PTR: ['mx1.example.org'] },
      'mx1.example.org': { A: ['198.18.85.1'] },
      // the rcpt verdict waits on this (slow) lookup
      '2.85.18.198.in-addr.arpa': { PTR: ['mx2.example.org'] },
      'mx2.example.org': { A: ['198.18.85.2'], delayMs: 300 },
    },
    files: {
      'shield.relay.ini': '[main]\ndomains = example.com\nnetworks = 10.0.0.0/8\n',
      'shield.dnsbl.ini': '[main]\nzones = bl\nhealth_interval = 0\n\n[bl]\nzone = bl.example.net\n',
    },
  });

  it('after the 421, no DNS list and no PTR query is made for the re-announced address', async () => {
    const c = await SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.85.1' });
    try {
      await c.cmd('EHLO mx1.example.org');
      assertReply(await c.cmd('PROXY TCP4 198.18.85.99 198.18.255.25 40000 25'), 421, '4.7.0', 'second PROXY');
    } finally {
      await c.quit();
    }
    await sleep(800);
    assert.ok(env.dns.countFor('1.85.18.198.bl.example.net') > 0, 'the first identity was looked up');
    assert.equal(env.dns.countFor('99.85.18.198.bl.example.net'), 0, 'DNSBL asked about the re-announced address');
    assert.equal(env.dns.countFor('99.85.18.198.in-addr.arpa'), 0, 'PTR asked for the re-announced address');
  });

  it('a PROXY line pipelined behind a RCPT that waits on DNS: the RCPT is answered for the first identity, then 421', async () => {
    const s = net.connect({ port: env.haraka.port, host: '127.0.0.1', localAddress: nextSource() });
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('error', () => undefined);
    let closed = false;
    s.on('close', () => (closed = true));
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    s.write('PROXY TCP4 198.18.85.2 198.18.255.25 40000 25\r\n');
    await until('greeting', async () => /^220 /m.test(out));
    s.write('EHLO mx2.example.org\r\n');
    await until('ehlo', async () => /^250 /m.test(out));
    s.write('MAIL FROM:<a@example.org>\r\nRCPT TO:<someone@example.net>\r\nPROXY TCP4 10.9.9.9 198.18.255.25 40000 25\r\nRCPT TO:<victim@example.net>\r\n');
    await until('the connection to close', async () => closed, 8000);
    const replies = out.split('\r\n').filter((l) => /^\d{3} /.test(l));
    // greeting, EHLO, MAIL, RCPT (relay denied), 421 for the PROXY line; the last RCPT is never answered 250
    assert.match(replies.join('\n'), /^550 5\.7\.1 Relaying denied/m);
    assert.match(replies.join('\n'), /^421 4\.7\.0 /m);
    assert.equal(replies.filter((l) => /^250 /.test(l)).length, 2, replies.join('\n'));
    // let the slow DNS answers go out before the fixture closes
    await sleep(1500);
  });
});
