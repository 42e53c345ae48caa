/**
 * the decision step and the rDNS verdict against exemptions that arrive later in
 * the connection (AUTH), postmaster@ after a score refusal, and headers the client wrote itself.
 */
import assert from 'node:assert/strict';
import { until, useHaraka } from '../helpers/env';
import { SmtpClient, assertReply, nextSource, session } from '../helpers/smtp';

const ZONES = {
  // generic, forward-confirmed PTR; the HELO resolves elsewhere: rdns.generic 1 + helo.match 1 = 2
  '50.91.18.198.in-addr.arpa': { PTR: ['198-18-91-50.dyn.example.net'] },
  '198-18-91-50.dyn.example.net': { A: ['198.18.91.50'] },
  '51.91.18.198.in-addr.arpa': { PTR: ['198-18-91-51.dyn.example.net'] },
  '198-18-91-51.dyn.example.net': { A: ['198.18.91.51'] },
  '53.91.18.198.in-addr.arpa': { PTR: ['198-18-91-53.dyn.example.net'] },
  '198-18-91-53.dyn.example.net': { A: ['198.18.91.53'] },
  'elsewhere.example.org': { A: ['192.0.2.80'] },
  // a clean, confirmed client
  '52.91.18.198.in-addr.arpa': { PTR: ['mx.clean.example.org'] },
  'mx.clean.example.org': { A: ['198.18.91.52'] },
};
const PLUGINS = ['test.auth', 'shield.relay', 'shield.rdns', 'test.capture', 'queue/discard'];
const FILES = { 'shield.relay.ini': '[main]\ndomains = example.com\n' };

describe('the score step and authenticated users (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({ plugins: PLUGINS, zones: ZONES, files: FILES, suite: { policy: { reject_score: '2', tag_score: '1' } } });

  it('a client that authenticates after a refused transaction is not refused on the score of its unauthenticated past', async () => {
    const c = await SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.91.50' });
    try {
      await c.cmd('EHLO elsewhere.example.org');
      await c.cmd('MAIL FROM:<a@example.org>');
      assertReply(await c.cmd('RCPT TO:<b@example.com>'), 550, '5.7.1', 'unauthenticated: score 2 reaches reject_score 2');
      assert.equal((await c.cmd('RSET')).code, 250);
      assert.equal((await c.auth('alice', 'wonderland')).code, 235, 'AUTH succeeds');
      // authenticated users are exempt from every reputation check (docs/configuration.md, session.exemption)
      const mail = await c.cmd('MAIL FROM:<alice@example.com>');
      assert.equal(mail.code, 250, `MAIL of an authenticated user: ${mail.text}`);
      const rcpt = await c.cmd('RCPT TO:<someone@example.net>');
      assert.equal(rcpt.code, 250, `authenticated relay: ${rcpt.text}`);
    } finally {
      await c.quit();
    }
  });

  it('postmaster@ stays reachable in the next transaction of a connection refused on its score', async () => {
    const c = await SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.91.51' });
    try {
      await c.cmd('EHLO elsewhere.example.org');
      await c.cmd('MAIL FROM:<a@example.org>');
      const first = await c.cmd('RCPT TO:<b@example.com>');
      assertReply(first, 550, '5.7.1', 'score refusal');
      // the sender does what the reply suggests: writes to postmaster@ (new transaction)
      assert.equal((await c.cmd('RSET')).code, 250);
      const mail = await c.cmd('MAIL FROM:<a@example.org>');
      assert.equal(mail.code, 250, `MAIL of the transaction for postmaster@: ${mail.text}`);
      const pm = await c.cmd('RCPT TO:<postmaster@example.com>');
      assert.equal(pm.code, 250, `postmaster@: ${pm.text}`);
    } finally {
      await c.quit();
    }
  });

  it('a clean client cannot smuggle its own X-Shield header past the suite (one X-Shield per message)', async () => {
    const forged = 'X-Shield: score=0 tagged=no tags=\nFrom: a@example.org\nTo: b@example.com\nSubject: t\n\nhello\n';
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.91.52', helo: 'mx.clean.example.org', from: 'a@example.org', rcpts: ['b@example.com'], message: forged });
    assert.equal(r.data?.code, 250);
    await env.haraka.waitFor(/shield summary ip=198\.18\.91\.52 /);
    await new Promise((res) => setTimeout(res, 300));
    assert.doesNotMatch(env.haraka.output, /captured X-Shield: score=0 tagged=no tags=$/m, 'the client-written X-Shield reached the queue as if the suite had written it');
  });

});

describe('X-Shield on a tagged message (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({ plugins: PLUGINS, zones: ZONES, files: FILES, suite: { policy: { reject_score: '0', tag_score: '1' } } });

  it('a tagged message carries exactly one X-Shield header even when the client wrote one', async () => {
    const forged = 'X-Shield: score=0 tagged=no tags=\nFrom: a@example.org\nTo: b@example.com\nSubject: t\n\nhello\n';
    const before = (env.haraka.output.match(/captured X-Shield:/g) ?? []).length;
    // score 2, never refused here (reject_score = 0): the message is accepted and tagged
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.91.53', helo: 'elsewhere.example.org', from: 'a@example.org', rcpts: ['b@example.com'], message: forged });
    assert.equal(r.data?.code, 250, r.data?.text);
    await env.haraka.waitFor(/shield summary ip=198\.18\.91\.53 /);
    await new Promise((res) => setTimeout(res, 300));
    const after = (env.haraka.output.match(/captured X-Shield:/g) ?? []).length;
    assert.equal(after - before, 1, env.haraka.output.split('\n').filter((l) => /captured X-Shield/.test(l)).slice(-3).join('\n'));
  });
});

describe('the rDNS verdict and a client that authenticates later (integration)', function () {
  this.timeout(30000);
  // no PTR at all for 198.18.91.60: rdns.ptr = fail:no_ptr, action reject (550 5.7.25)
  const env = useHaraka({ plugins: PLUGINS, zones: ZONES, files: FILES });

  it('the cached rDNS refusal is not given to the same client once it has authenticated', async () => {
    const c = await SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.91.60' });
    try {
      await c.cmd('EHLO mx.example.org');
      await c.cmd('MAIL FROM:<a@example.org>');
      assertReply(await c.cmd('RCPT TO:<b@example.com>'), 550, '5.7.25', 'unauthenticated, no PTR');
      assert.equal((await c.cmd('RSET')).code, 250);
      assert.equal((await c.auth('alice', 'wonderland')).code, 235);
      assert.equal((await c.cmd('MAIL FROM:<alice@example.com>')).code, 250);
      const rcpt = await c.cmd('RCPT TO:<b@example.com>');
      assert.equal(rcpt.code, 250, `authenticated users are exempt from shield.rdns (docs/shield.rdns.md): ${rcpt.text}`);
    } finally {
      await c.quit();
    }
  });
});

describe('the score step next to a recipient plugin that accepts (integration)', function () {
  this.timeout(30000);
  // test.rcpt stands for rcpt_to.in_host_list, qmail-deliverable, an LDAP lookup: it answers OK at
  // the default priority (0), before the decision step's RCPT hook (90) ever runs
  const env = useHaraka({
    plugins: ['shield.relay', 'shield.rdns', 'test.rcpt', 'test.capture', 'queue/discard'],
    zones: ZONES,
    files: { 'shield.relay.ini': '[main]\ndomains = example.com\n' },
    suite: { policy: { reject_score: '2' } },
  });

  it('a recipient another plugin accepts is still refused on the score at RCPT', async () => {
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.91.50', helo: 'elsewhere.example.org', from: 'a@example.org', rcpts: ['known@example.com'] });
    assertReply(r.rcpts[0], 550, '5.7.1', 'score 2 >= reject_score 2 at RCPT');
  });

  it('the message for postmaster@ is not refused on the score because another recipient was accepted', async () => {
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.91.51', helo: 'elsewhere.example.org', from: 'a@example.org', rcpts: ['postmaster@example.com', 'known@example.com'], message: 'From: a@example.org\nSubject: t\n\nhello\n' });
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    assert.equal(r.data?.code, 250, `postmaster@ never refused on the score (docs/configuration.md): DATA ${r.data?.text}; RCPT known@: ${r.rcpts[1]?.text}`);
  });
});

describe('shield.ini [policy] changed while Haraka runs (integration)', function () {
  this.timeout(60000);
  const env = useHaraka({ plugins: PLUGINS, zones: ZONES, files: FILES, suite: { policy: { reject_score: '0', tag_score: '1' } } });

  it('lowering reject_score applies to the next connection; a bad value keeps the last good [policy]', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const file = path.join(env.haraka.dir, 'config', 'shield.ini');
    const first = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.91.50', helo: 'elsewhere.example.org', from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.equal(first.rcpts[0]?.code, 250, first.rcpts[0]?.text);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('reject_score = 0', 'reject_score = 2'));
    await env.haraka.waitFor(/reloaded shield\.ini/, 20000);
    const second = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.91.51', helo: 'elsewhere.example.org', from: 'a@example.org', rcpts: ['b@example.com'] });
    assertReply(second.rcpts[0], 550, '5.7.1', 'after the reload');
    const mark = env.haraka.output.length;
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('reject_score = 2', 'reject_score = -1'));
    await until('the bad value to be refused', async () => /keeping the last good shield\.ini/.test(env.haraka.output.slice(mark)), 20000);
    const third = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.91.53', helo: 'elsewhere.example.org', from: 'a@example.org', rcpts: ['b@example.com'] });
    assertReply(third.rcpts[0], 550, '5.7.1', 'last good [policy] kept');
  });
});

describe('a sender domain listing lasts its transaction only (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({
    plugins: ['shield.relay', 'shield.dnsbl', 'test.capture', 'queue/discard'],
    zones: { 'listed.example.org.dl.example.net': { A: ['127.0.0.2'] } },
    files: {
      'shield.relay.ini': '[main]\ndomains = example.com\n',
      'shield.dnsbl.ini': '[main]\nzones = dl\nthreshold = 1\nhealth_interval = 0\n\n[dl]\ntype = domain\nzone = dl.example.net\nregistered_domain = false\nweight = 0.5\ncheck = mail_from\n',
    },
  });

  it('the second transaction after RSET carries no X-Shield from the first sender', async () => {
    const c = await SmtpClient.connect({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.91.70' });
    try {
      await c.cmd('EHLO mx.example.org');
      assert.equal((await c.cmd('MAIL FROM:<a@listed.example.org>')).code, 250);
      assert.equal((await c.cmd('RCPT TO:<b@example.com>')).code, 250);
      assert.equal((await c.data('From: a@listed.example.org\n\none\n')).code, 250);
      await env.haraka.waitFor(/captured X-Shield: score=0\.5 tagged=no tags=dnsbl\.dl$/m);
      const mark = env.haraka.output.length;
      assert.equal((await c.cmd('RSET')).code, 250);
      assert.equal((await c.cmd('MAIL FROM:<a@clean.example.org>')).code, 250);
      assert.equal((await c.cmd('RCPT TO:<b@example.com>')).code, 250);
      assert.equal((await c.data('From: a@clean.example.org\n\ntwo\n')).code, 250);
      await new Promise((r) => setTimeout(r, 300));
      assert.doesNotMatch(env.haraka.output.slice(mark), /captured X-Shield/);
    } finally {
      await c.quit();
    }
  });
});
