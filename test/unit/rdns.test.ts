import assert from 'node:assert/strict';
import {
  DEFAULT_GENERIC_PATTERNS,
  compilePattern,
  embedsAddress,
  fcrdns,
  genericEvidence,
  heloForm,
  heloMatchEvidence,
  heloStaticEvidence,
  rdnsEvidence,
  type RdnsDeps,
} from '../../plugins/shield/checks/rdns';
import { DnsError } from '../../plugins/shield/core/errors';
import { Resolver } from '../../plugins/shield/core/dns';
import { parseIp, type ParsedIp } from '../../plugins/shield/core/net';
import { DnsFixture } from '../helpers/dns-server';

const ip = (s: string) => parseIp(s) as ParsedIp;

/** a stub resolver: name -> addresses, or 'timeout' */
function stub(map: Record<string, string[] | 'timeout'>): RdnsDeps & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async forwardConfirms(name, addr) {
      asked.push(name);
      const v = map[name];
      if (v === 'timeout') throw new DnsError('DNS_TIMEOUT', name, 'A', 'timeout');
      return (v ?? []).some((a) => parseIp(a)?.text === addr.text);
    },
  };
}

describe('rdns: FCrDNS', () => {
  it('passes when a PTR name resolves back to the address, and names it', async () => {
    const r = await fcrdns(ip('198.51.100.7'), { status: 'ok', names: ['MX.Example.COM.'] }, stub({ 'mx.example.com': ['198.51.100.7'] }), 3);
    assert.deepEqual(r, { iprev: 'pass', confirmed: 'mx.example.com', names: ['mx.example.com'], errors: [] });
    assert.deepEqual(rdnsEvidence('198.51.100.7', { status: 'ok', names: ['mx.example.com'] }, r).map((e) => `${e.check}=${e.outcome}:${e.reason}`), ['rdns.ptr=pass:has_ptr', 'rdns.fcrdns=pass:confirmed']);
  });

  it('with several PTRs, any one confirming is enough; the cap limits the lookups', async () => {
    const deps = stub({ 'b.example.com': ['198.51.100.7'] });
    const r = await fcrdns(ip('198.51.100.7'), { status: 'ok', names: ['a.example.com', 'b.example.com', 'c.example.com', 'd.example.com'] }, deps, 2);
    assert.equal(r.confirmed, 'b.example.com');
    assert.deepEqual(deps.asked.sort(), ['a.example.com', 'b.example.com']);
    const capped = await fcrdns(ip('198.51.100.7'), { status: 'ok', names: ['a.example.com', 'c.example.com', 'b.example.com'] }, stub({ 'b.example.com': ['198.51.100.7'] }), 2);
    assert.equal(capped.iprev, 'fail');
  });

  it('fails when no name resolves back (iprev fail), and when there is no PTR (no_ptr)', async () => {
    const r = await fcrdns(ip('198.51.100.7'), { status: 'ok', names: ['mx.example.com'] }, stub({ 'mx.example.com': ['198.51.100.8'] }), 3);
    assert.equal(r.iprev, 'fail');
    assert.equal(rdnsEvidence('198.51.100.7', { status: 'ok', names: ['mx.example.com'] }, r)[1]?.reason, 'not_confirmed');
    const none = await fcrdns(ip('198.51.100.7'), { status: 'nxdomain', names: [] }, stub({}), 3);
    assert.equal(none.iprev, 'fail');
    assert.deepEqual(rdnsEvidence('198.51.100.7', { status: 'nxdomain', names: [] }, none).map((e) => `${e.check}=${e.outcome}:${e.reason}`), ['rdns.ptr=fail:no_ptr']);
  });

  it('a DNS fault is temperror / err, never a fail', async () => {
    const r = await fcrdns(ip('198.51.100.7'), { status: 'ok', names: ['mx.example.com'] }, stub({ 'mx.example.com': 'timeout' }), 3);
    assert.equal(r.iprev, 'temperror');
    assert.equal(rdnsEvidence('198.51.100.7', { status: 'ok', names: ['mx.example.com'] }, r)[1]?.outcome, 'err');
    const ptrErr = await fcrdns(ip('198.51.100.7'), { status: 'error', names: [] }, stub({}), 3);
    assert.equal(ptrErr.iprev, 'temperror');
    assert.deepEqual(rdnsEvidence('198.51.100.7', { status: 'error', names: [] }, ptrErr).map((e) => `${e.check}=${e.outcome}`), ['rdns.ptr=err']);
  });

  it('one name timing out does not hide another that confirms', async () => {
    const r = await fcrdns(ip('198.51.100.7'), { status: 'ok', names: ['slow.example.com', 'mx.example.com'] }, stub({ 'slow.example.com': 'timeout', 'mx.example.com': ['198.51.100.7'] }), 3);
    assert.equal(r.iprev, 'pass');
  });

  it('against the DNS fixture: IPv6 PTR in ip6.arpa, CNAME-ed forward names, and a dropped query', async () => {
    const dns = await DnsFixture.start({
      '7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.2.ip6.arpa': { PTR: ['mx6.example.net'] },
      'mx6.example.net': { CNAME: 'real6.example.net' },
      'real6.example.net': { AAAA: ['2001:2::7'] },
      '9.100.51.198.in-addr.arpa': { PTR: ['lost.example.net'] },
      'lost.example.net': { drop: true },
    });
    try {
      const res = new Resolver({ nameservers: [dns.address], timeoutMs: 150, tries: 1, cacheSize: 100, minTtl: 0, maxTtl: 3600, negativeTtl: 60 });
      const ptr6 = await res.reverse('2001:2::7');
      assert.deepEqual(ptr6.records, ['mx6.example.net']);
      const r6 = await fcrdns(ip('2001:2::7'), { status: ptr6.status, names: ptr6.records }, res, 3);
      assert.equal(r6.confirmed, 'mx6.example.net');
      const ptr4 = await res.reverse('198.51.100.9');
      const t0 = Date.now();
      const r4 = await fcrdns(ip('198.51.100.9'), { status: ptr4.status, names: ptr4.records }, res, 3);
      assert.equal(r4.iprev, 'temperror');
      assert.ok(Date.now() - t0 < 1000);
    } finally {
      await dns.close();
    }
  });
});

describe('rdns: generic names', () => {
  const patterns = DEFAULT_GENERIC_PATTERNS.map(compilePattern);
  for (const [name, addr, generic] of [
    ['198-51-100-7.dsl.example.net', '198.51.100.7', true],
    ['7.100.51.198.in-addr.example.net', '198.51.100.7', true],
    ['host198051100007.example.net', '198.51.100.7', true],
    ['c6336407.example.net', '198.51.100.7', true], // hex
    ['dyn-1234.example.net', '198.51.100.7', true],
    ['pool-a.example.com', '198.51.100.7', true],
    ['mail.example.com', '198.51.100.7', false],
    ['mx1.dynamics-partner.example.com', '198.51.100.7', false],
    ['smtp100.example.com', '198.51.100.7', false],
    ['2001-2-0-0-dead-beef-0-7.v6.example.net', '2001:2::dead:beef:0:7', true],
    ['mx.v6.example.net', '2001:2::dead:beef:0:7', false],
  ] as const) {
    it(`${name} from ${addr}: ${generic ? 'generic' : 'specific'}`, () => {
      assert.equal(genericEvidence(name, ip(addr), patterns).outcome, generic ? 'fail' : 'pass');
    });
  }

  it('embedsAddress needs the whole address, not a fragment', () => {
    assert.equal(embedsAddress('mx-100-7.example.com', ip('198.51.100.7')), false);
    assert.equal(embedsAddress('a1198.51.100.71.example.com', ip('198.51.100.7')), false, 'digits glued on both sides make other numbers');
  });

  it('refuses a bad pattern with a clear message', () => {
    assert.throws(() => compilePattern('(unclosed'), /"\(unclosed" is not a valid regular expression/);
  });
});

describe('rdns: HELO', () => {
  it('reads HELO forms: names, literals, and what is invalid', () => {
    assert.deepEqual(heloForm('Mail.Example.COM.'), { kind: 'name', name: 'mail.example.com' });
    assert.equal(heloForm('[192.0.2.1]').kind, 'literal');
    assert.equal(heloForm('[IPv6:2001:db8::1]').kind, 'literal');
    for (const [h, reason] of [
      ['192.0.2.1', 'bare_ip'],
      ['2001:db8::1', 'bare_ip'],
      ['[2001:db8::1]', 'bad_literal'],
      ['[300.1.1.1]', 'bad_literal'],
      ['localhost', 'not_fqdn'],
      ['LAPTOP-7QK2', 'not_fqdn'],
      ['host.local', 'no_public_suffix'],
      ['mail.example', 'no_public_suffix'],
      ['com', 'not_fqdn'],
      ['bad!name.example.com', 'bad_characters'],
      ['', 'empty'],
    ] as const) {
      assert.deepEqual(heloForm(h), { kind: 'invalid', reason }, h);
    }
  });

  const ours = new Set(['mx.example.com', 'example.com']);
  const ctx = { ip: ip('198.51.100.7'), ourName: (n: string) => ours.has(n), ourIps: new Set(['198.18.255.25']) };
  const summary = (evs: { check: string; outcome: string; reason: string }[]) => evs.map((e) => `${e.check}=${e.outcome}:${e.reason}`);

  it('literal must be the client address; our own name or address is impersonation', () => {
    assert.deepEqual(summary(heloStaticEvidence('[198.51.100.7]', ctx)), ['helo.syntax=pass:literal', 'helo.literal=pass:matches_client']);
    assert.deepEqual(summary(heloStaticEvidence('[198.51.100.8]', ctx)), ['helo.syntax=pass:literal', 'helo.literal=fail:literal_mismatch']);
    assert.deepEqual(summary(heloStaticEvidence('[198.18.255.25]', ctx)), ['helo.syntax=pass:literal', 'helo.impersonation=fail:our_address']);
    assert.deepEqual(summary(heloStaticEvidence('MX.example.com', ctx)), ['helo.syntax=pass:name', 'helo.impersonation=fail:our_name']);
    assert.deepEqual(summary(heloStaticEvidence('example.com.', ctx)), ['helo.syntax=pass:name', 'helo.impersonation=fail:our_name']);
    assert.deepEqual(summary(heloStaticEvidence('client.example.org', ctx)), ['helo.syntax=pass:name']);
    assert.deepEqual(summary(heloStaticEvidence('198.51.100.7', ctx)), ['helo.syntax=fail:bare_ip']);
  });

  it('match: resolves to the client, or same registered domain as the confirmed rDNS (public-suffix aware)', async () => {
    const deps = stub({ 'out.example.org': ['198.51.100.7'], 'other.example.org': ['192.0.2.1'], 'slow.example.org': 'timeout' });
    assert.equal((await heloMatchEvidence('out.example.org', ip('198.51.100.7'), null, deps))?.reason, 'resolves_to_client');
    assert.equal((await heloMatchEvidence('mx1.example.co.uk', ip('198.51.100.7'), 'out.example.co.uk', deps))?.reason, 'same_domain_as_rdns');
    assert.equal((await heloMatchEvidence('a.github.io', ip('198.51.100.7'), 'b.github.io', deps))?.outcome, 'fail', 'a private suffix is not a shared domain');
    assert.equal((await heloMatchEvidence('other.example.org', ip('198.51.100.7'), 'mx.example.net', deps))?.outcome, 'fail');
    assert.equal((await heloMatchEvidence('slow.example.org', ip('198.51.100.7'), null, deps))?.outcome, 'err');
    assert.equal(await heloMatchEvidence('[198.51.100.7]', ip('198.51.100.7'), null, deps), null, 'literals are judged by helo.literal');
  });
});
