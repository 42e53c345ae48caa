/**
 * The suite's decision step through a real Haraka: soft findings (checks whose action is tag) add
 * their scores; shield.ini [policy] decides at RCPT and tags the message with one X-Shield header.
 */
import assert from 'node:assert/strict';
import { DNSBL_INI, dnsblZones } from '../helpers/dnsbl-zones';
import { useHaraka } from '../helpers/env';
import { assertReply, nextSource, session } from '../helpers/smtp';

const MESSAGE = 'From: a@example.org\nTo: b@example.com\nSubject: test\n\nhello\n';
const PLUGINS = ['shield.relay', 'shield.rdns', 'shield.dnsbl', 'test.capture', 'queue/discard'];
const ZONES = {
  ...dnsblZones(),
  // a generic, forward-confirmed PTR; the HELO does not resolve to the client: two tag-level findings
  '40.90.18.198.in-addr.arpa': { PTR: ['198-18-90-40.dyn.example.net'] },
  '198-18-90-40.dyn.example.net': { A: ['198.18.90.40'] },
  '41.90.18.198.in-addr.arpa': { PTR: ['198-18-90-41.dyn.example.net'] },
  '198-18-90-41.dyn.example.net': { A: ['198.18.90.41'] },
  'elsewhere.example.org': { A: ['192.0.2.80'] },
  // a clean, confirmed client
  '42.90.18.198.in-addr.arpa': { PTR: ['mx.clean.example.org'] },
  'mx.clean.example.org': { A: ['198.18.90.42'] },
  '3.60.18.198.in-addr.arpa': { PTR: ['mx3.clean.example.org'] },
  'mx3.clean.example.org': { A: ['198.18.60.3'] },
  '5.60.18.198.in-addr.arpa': { drop: true },
};
// the address lists only: the domain list of the dnsbl tests lists example.net
const FILES = { 'shield.relay.ini': '[main]\ndomains = example.com\n', 'shield.dnsbl.ini': DNSBL_INI.replace('health_interval = 1s', 'health_interval = 0').replace(/^zones = .*$/m, 'zones = bl, wl, slow') };

describe('decision step: default [policy] (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({ plugins: PLUGINS, zones: ZONES, files: FILES });

  it('two tag-level findings stay a tag at the default reject_score: 250, and one X-Shield header with the score', async () => {
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.90.40', helo: 'elsewhere.example.org', from: 'a@example.org', rcpts: ['b@example.com'], message: MESSAGE });
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    assert.equal(r.data?.code, 250);
    await env.haraka.waitFor(/captured X-Shield: score=2 tagged=no tags=(rdns\.generic:embeds_address,helo\.match:mismatch|helo\.match:mismatch,rdns\.generic:embeds_address)$/m);
    await env.haraka.waitFor(/shield summary ip=198\.18\.90\.40 .*rdns\.generic=fail:embeds_address\(1\).*helo\.match=fail:mismatch\(1\)/);
  });

  it('a clean client gets no header', async () => {
    const before = (env.haraka.output.match(/captured X-Shield:/g) ?? []).length;
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.90.42', helo: 'mx.clean.example.org', from: 'a@example.org', rcpts: ['b@example.com'], message: MESSAGE });
    assert.equal(r.data?.code, 250);
    await env.haraka.waitFor(/shield summary ip=198\.18\.90\.42 /);
    assert.equal((env.haraka.output.match(/captured X-Shield:/g) ?? []).length, before);
  });
});

describe('decision step: reject_score = 2, tag_score = 1 (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({ plugins: PLUGINS, zones: ZONES, files: FILES, suite: { policy: { reject_score: '2', tag_score: '1' } } });

  it('the same two findings add up to 550 5.7.1 naming them; postmaster@ is still reachable', async () => {
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.90.41', helo: 'elsewhere.example.org', from: 'a@example.org', rcpts: ['b@example.com', 'postmaster@example.com'], message: MESSAGE });
    assertReply(r.rcpts[0], 550, '5.7.1', 'score 2 >= reject_score 2');
    assert.match(r.rcpts[0]!.text, /Rejected: your score 2 reached 2 \((rdns\.generic:embeds_address 1, helo\.match:mismatch 1|helo\.match:mismatch 1, rdns\.generic:embeds_address 1)\)/);
    assert.equal(r.rcpts[1]?.code, 250, r.rcpts[1]?.text);
    assert.equal(r.data?.code, 250, 'the message for postmaster@ goes through');
    await env.haraka.waitFor(/captured X-Shield: score=2 tagged=yes tags=/);
    await env.haraka.waitFor(/shield summary ip=198\.18\.90\.41 .*policy=fail:reject_score\(2\)/);
  });

  it('a DNSBL listing below its zone threshold adds its weight; an allowlist weight takes it away', async () => {
    // 198.18.60.3: listed by bl (1) and wl (-2): score -1, nothing to refuse
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.60.3', helo: 'mx3.clean.example.org', from: 'a@example.org', rcpts: ['b@example.com'], message: MESSAGE });
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    await env.haraka.waitFor(/captured X-Shield: score=-1 tagged=no tags=dnsbl\.bl,dnsbl\.wl$/m);
  });

  it('err evidence never adds to the score: DNS timeouts alone never reach reject_score', async () => {
    // the slow zone times out for 198.18.60.5, and so does its PTR
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.60.5', helo: 'elsewhere.example.org', from: 'a@example.org', rcpts: ['b@example.com'] });
    assertReply(r.rcpts[0], 450, '4.7.25', 'rDNS unknown: defer, and no score');
    await env.haraka.waitFor(/shield summary ip=198\.18\.60\.5 .*rdns\.ptr=err:dns_error/);
    assert.doesNotMatch(env.haraka.output, /shield summary ip=198\.18\.60\.5 .*policy=/);
  });
});

describe('decision step: defer_score and dry run (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({ plugins: PLUGINS, zones: ZONES, files: FILES, suite: { policy: { reject_score: '5', defer_score: '2' } } });

  it('between defer_score and reject_score the answer is 451 4.7.1', async () => {
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.90.40', helo: 'elsewhere.example.org', from: 'a@example.org', rcpts: ['b@example.com'] });
    assertReply(r.rcpts[0], 451, '4.7.1', 'score 2 >= defer_score 2');
    assert.match(r.rcpts[0]!.text, /Deferred: your score 2 reached 2/);
  });
});

describe('decision step in dry run (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({ plugins: PLUGINS, zones: ZONES, files: FILES, suite: { main: { mode: 'dryrun' }, policy: { reject_score: '2' } } });

  it('logs what the sum would have done and lets the mail through', async () => {
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.90.40', helo: 'elsewhere.example.org', from: 'a@example.org', rcpts: ['b@example.com'], message: MESSAGE });
    assert.equal(r.rcpts[0]?.code, 250, r.rcpts[0]?.text);
    await env.haraka.waitFor(/\[shield\] dryrun: would answer 550 5\.7\.1 Rejected: your score 2 reached 2/);
  });
});
