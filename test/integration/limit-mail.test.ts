/**
 * shield.limit's per-connection MAIL cap (max_mails, max_mails_relay) and what the per-sender-domain
 * rates count (not the null sender, not an exempt domain), through a real Haraka.
 */
import assert from 'node:assert/strict';
import { useHaraka } from '../helpers/env';
import { SmtpClient, assertReply, nextSource } from '../helpers/smtp';

const PLUGINS = ['test.auth', 'shield.relay', 'shield.limit', 'queue/discard'];
const RELAY_INI = '[main]\ndomains = example.com\nnetworks = 198.18.31.0/24\n';
const LIMIT_INI = `[main]
sender_domain_exempt = big.example.net

[rates]
msg_sender_domain = 2/1h

[session]
max_mails = 3
max_mails_relay = 5
`;

describe('shield.limit max_mails (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({ plugins: PLUGINS, files: { 'shield.relay.ini': RELAY_INI, 'shield.limit.ini': LIMIT_INI } });
  const connect = (proxyFrom: string) => SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom });

  /** MAIL (then RSET) n times; the replies to the MAILs */
  async function mails(c: SmtpClient, n: number, from: (i: number) => string): Promise<number[]> {
    const codes: number[] = [];
    for (let i = 0; i < n; i++) {
      const r = await c.cmd(`MAIL FROM:<${from(i)}>`);
      codes.push(r.code);
      if (r.code === 421) break;
      await c.cmd('RSET');
    }
    return codes;
  }

  it('answers the MAIL past max_mails with 421 4.7.0 and closes the connection; a new connection starts again', async () => {
    const c = await connect('198.18.27.1');
    await c.cmd('EHLO client.example.org');
    assert.deepEqual(await mails(c, 3, () => ''), [250, 250, 250]);
    const r = await c.cmd('MAIL FROM:<>');
    assertReply(r, 421, '4.7.0', 'fourth MAIL');
    assert.equal(r.text, '421 4.7.0 Too many messages in one connection (limit 3); please reconnect to send more');
    await assert.rejects(c.cmd('NOOP'), /closed/);
    await c.quit();
    const d = await connect('198.18.27.1');
    await d.cmd('EHLO client.example.org');
    assert.equal((await d.cmd('MAIL FROM:<>')).code, 250, 'the cap is per connection');
    await d.quit();
    await env.haraka.waitFor(/shield summary ip=198\.18\.27\.1 .*limit=fail:max_mails/);
  });

  it('a MAIL refused by a rate still counts towards max_mails', async () => {
    const c = await connect('198.18.27.2');
    await c.cmd('EHLO client.example.org');
    // msg_sender_domain = 2/1h: the third MAIL of small.example.org is refused, and counted
    assert.deepEqual(await mails(c, 4, () => 'a@small.example.org'), [250, 250, 451, 421]);
    await c.quit();
  });

  it('relay clients and authenticated users get max_mails_relay', async () => {
    const relay = await connect('198.18.31.7');
    await relay.cmd('EHLO relay.example.com');
    assert.deepEqual(await mails(relay, 6, () => ''), [250, 250, 250, 250, 250, 421]);
    await relay.quit();
    const user = await connect('198.18.27.3');
    await user.cmd('EHLO laptop.example.com');
    assert.equal((await user.auth('alice', 'wonderland')).code, 235);
    assert.deepEqual(await mails(user, 6, () => ''), [250, 250, 250, 250, 250, 421]);
    await user.quit();
  });

  it('msg_sender_domain counts neither the null sender nor an exempt domain (or its subdomains)', async () => {
    for (const from of ['', 'x@big.example.net', 'x@mx.big.example.net']) {
      for (let n = 0; n < 2; n++) {
        const c = await connect(`198.18.28.${n + 1}`);
        await c.cmd('EHLO client.example.org');
        assert.deepEqual(await mails(c, 2, () => from), [250, 250], `<${from}> connection ${n + 1}`);
        await c.quit();
      }
    }
    const c = await connect('198.18.28.9');
    await c.cmd('EHLO client.example.org');
    const codes = await mails(c, 3, () => 'x@other.example.org');
    assert.deepEqual(codes, [250, 250, 451], 'a domain not exempt is counted');
    await c.quit();
  });
});
