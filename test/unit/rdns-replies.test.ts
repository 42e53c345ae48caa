/** shield.rdns: the replies a refused client reads, and the evidence data operators see. */
import assert from 'node:assert/strict';
import { compilePattern, fcrdns, genericEvidence, heloForm, heloMatchEvidence, heloStaticEvidence, rdnsEvidence, rdnsReplies, type RdnsDeps } from '../../plugins/shield/checks/rdns';
import { DnsError } from '../../plugins/shield/core/errors';
import { parseIp, type ParsedIp } from '../../plugins/shield/core/net';
import { formatReply } from '../../plugins/shield/core/policy';

const ip = (s: string) => parseIp(s) as ParsedIp;

function stub(map: Record<string, string[] | 'timeout'>): RdnsDeps & { asked: Array<[string, string]> } {
  const asked: Array<[string, string]> = [];
  return {
    asked,
    async forwardConfirms(name, addr) {
      asked.push([name, addr.text]);
      const v = map[name];
      if (v === 'timeout') throw new DnsError('DNS_TIMEOUT', name, 'A', 'timeout');
      return (v ?? []).some((a) => parseIp(a)?.text === addr.text);
    },
  };
}

describe('rdns replies: reverse DNS is 5.7.25 (RFC 7372), a DNS fault 450 4.7.25', () => {
  const IP = '198.51.100.7';
  const defer = { code: 450, status: '4.7.25', text: 'Cannot verify the reverse DNS of 198.51.100.7 right now; please try again later', disconnect: false };

  it('rdns.ptr: no PTR record', () => {
    const r = rdnsReplies('rdns.ptr', { check: 'rdns.ptr', outcome: 'fail', reason: 'no_ptr', data: { ip: IP } }, IP);
    assert.deepEqual(r.reject, {
      code: 550,
      status: '5.7.25',
      text: 'Reverse DNS required: 198.51.100.7 has no PTR record; ask your provider to set one that resolves back to 198.51.100.7',
      disconnect: false,
    });
    assert.deepEqual(r.defer, defer);
  });

  it('rdns.fcrdns: names the PTR names that do not resolve back', () => {
    const r = rdnsReplies('rdns.fcrdns', { check: 'rdns.fcrdns', outcome: 'fail', reason: 'not_confirmed', data: { ip: IP, names: ['a.example.net', 'b.example.net'] } }, IP);
    assert.equal(formatReply(r.reject), '550 5.7.25 Reverse DNS of 198.51.100.7 (a.example.net, b.example.net) does not resolve back to 198.51.100.7');
    assert.deepEqual(r.defer, defer);
    assert.equal(rdnsReplies('rdns.fcrdns', { check: 'rdns.fcrdns', outcome: 'fail', reason: 'x' }, IP).reject.text, 'Reverse DNS of 198.51.100.7 () does not resolve back to 198.51.100.7');
  });

  it('rdns.generic: names the generic host name', () => {
    const r = rdnsReplies('rdns.generic', genericEvidence('198-51-100-7.dsl.example.net', ip(IP), []), IP);
    assert.equal(
      formatReply(r.reject),
      "550 5.7.25 198-51-100-7.dsl.example.net looks like a dynamic or generic host name; send through your provider's mail server or set a specific PTR",
    );
    assert.deepEqual(r.defer, defer);
  });
});

describe('rdns replies: the HELO is 5.7.1, a DNS fault 450 4.7.1', () => {
  const IP = '198.51.100.7';
  const ctx = { ip: ip(IP), ourName: (n: string) => n === 'mx.example.com', ourIps: new Set(['192.0.2.25']) };
  const heloDefer = (helo: string) => ({ code: 450, status: '4.7.1', text: `Cannot verify your HELO name ${helo} right now; please try again later`, disconnect: false });

  it('helo.syntax', () => {
    const ev = heloStaticEvidence('LAPTOP-7QK2', ctx)[0];
    assert.ok(ev);
    const r = rdnsReplies('helo.syntax', ev, IP);
    assert.deepEqual(r.reject, { code: 550, status: '5.7.1', text: 'HELO/EHLO LAPTOP-7QK2 is not a fully qualified domain name or an address literal (RFC 5321 4.1.1.1)', disconnect: false });
    assert.deepEqual(r.defer, heloDefer('LAPTOP-7QK2'));
  });

  it('helo.literal', () => {
    const ev = heloStaticEvidence('[192.0.2.99]', ctx)[1];
    assert.equal(ev?.check, 'helo.literal');
    assert.equal(formatReply(rdnsReplies('helo.literal', ev!, IP).reject), '550 5.7.1 HELO/EHLO [192.0.2.99] is not your address 198.51.100.7');
  });

  it('helo.impersonation, by name or by address', () => {
    const byName = heloStaticEvidence('MX.example.com', ctx)[1];
    assert.equal(formatReply(rdnsReplies('helo.impersonation', byName!, IP).reject), "550 5.7.1 HELO/EHLO MX.example.com is this server's own name or address, and you are not this server");
    const byIp = heloStaticEvidence('[192.0.2.25]', ctx)[1];
    assert.deepEqual(byIp, { check: 'helo.impersonation', outcome: 'fail', reason: 'our_address', data: { helo: '[192.0.2.25]' } });
    assert.deepEqual(rdnsReplies('helo.impersonation', byIp!, IP).defer, heloDefer('[192.0.2.25]'));
  });

  it('helo.match (and anything else): does not resolve to the client', async () => {
    const ev = await heloMatchEvidence('other.example.org', ip(IP), 'mx.example.net', stub({}));
    assert.deepEqual(ev, { check: 'helo.match', outcome: 'fail', reason: 'mismatch', data: { helo: 'other.example.org', rdns: 'mx.example.net' } });
    const r = rdnsReplies('helo.match', ev!, IP);
    assert.equal(formatReply(r.reject), '550 5.7.1 HELO/EHLO other.example.org does not resolve to 198.51.100.7 and does not match your host name');
    assert.deepEqual(r.defer, heloDefer('other.example.org'));
    assert.equal(rdnsReplies('helo.match', { check: 'helo.match', outcome: 'fail', reason: 'x' }, IP).reject.text, 'HELO/EHLO  does not resolve to 198.51.100.7 and does not match your host name');
  });
});

describe('rdns evidence: the data in the log', () => {
  const IP = '198.51.100.7';

  it('rdns.ptr and rdns.fcrdns carry the address, the names and the confirmed name', async () => {
    const ok = { status: 'ok' as const, names: ['MX.example.com.', 'mx.example.com', 'bad name', 'alt.example.com'] };
    const r = await fcrdns(ip(IP), ok, stub({ 'alt.example.com': [IP] }), 5);
    assert.deepEqual(r, { iprev: 'pass', confirmed: 'alt.example.com', names: ['mx.example.com', 'alt.example.com'], errors: [] }, 'normalised, duplicates and junk dropped');
    assert.deepEqual(rdnsEvidence(IP, ok, r), [
      { check: 'rdns.ptr', outcome: 'pass', reason: 'has_ptr', data: { ip: IP, names: ['mx.example.com', 'alt.example.com'] } },
      { check: 'rdns.fcrdns', outcome: 'pass', reason: 'confirmed', data: { ip: IP, name: 'alt.example.com' } },
    ]);
  });

  it('a failed forward lookup is err with the names that failed; no confirmation is fail with all the names', async () => {
    const ptr = { status: 'ok' as const, names: ['a.example.com', 'b.example.com'] };
    const r = await fcrdns(ip(IP), ptr, stub({ 'a.example.com': 'timeout', 'b.example.com': ['192.0.2.1'] }), 5);
    assert.deepEqual(r, { iprev: 'temperror', confirmed: null, names: ['a.example.com', 'b.example.com'], errors: ['a.example.com'] });
    assert.deepEqual(rdnsEvidence(IP, ptr, r)[1], { check: 'rdns.fcrdns', outcome: 'err', reason: 'dns_error', data: { ip: IP, names: ['a.example.com'] } });
    const f = await fcrdns(ip(IP), ptr, stub({}), 5);
    assert.deepEqual(rdnsEvidence(IP, ptr, f)[1], { check: 'rdns.fcrdns', outcome: 'fail', reason: 'not_confirmed', data: { ip: IP, names: ['a.example.com', 'b.example.com'] } });
    const none = await fcrdns(ip(IP), { status: 'nodata', names: [] }, stub({}), 5);
    assert.deepEqual(none, { iprev: 'fail', confirmed: null, names: [], errors: [] });
    assert.deepEqual(rdnsEvidence(IP, { status: 'nodata', names: [] }, none), [{ check: 'rdns.ptr', outcome: 'fail', reason: 'no_ptr', data: { ip: IP, status: 'nodata' } }]);
    assert.deepEqual(rdnsEvidence(IP, { status: 'error', names: [] }, f), [{ check: 'rdns.ptr', outcome: 'err', reason: 'dns_error', data: { ip: IP } }]);
  });

  it('forward confirmation asks each distinct name once, for the client address, up to the cap', async () => {
    const deps = stub({});
    await fcrdns(ip(IP), { status: 'ok', names: ['a.example.com', 'A.example.com.', 'b.example.com', 'c.example.com'] }, deps, 2);
    assert.deepEqual(deps.asked, [['a.example.com', IP], ['b.example.com', IP]]);
  });

  it('generic names: which rule decided', () => {
    assert.deepEqual(genericEvidence('198-51-100-7.example.net', ip(IP), []), { check: 'rdns.generic', outcome: 'fail', reason: 'embeds_address', data: { name: '198-51-100-7.example.net' } });
    assert.deepEqual(genericEvidence('pool-9.example.net', ip(IP), [/pool/i]), { check: 'rdns.generic', outcome: 'fail', reason: 'dynamic_word', data: { name: 'pool-9.example.net', pattern: 'pool' } });
    assert.deepEqual(genericEvidence('mail.example.net', ip(IP), [/pool/i]), { check: 'rdns.generic', outcome: 'pass', reason: 'specific', data: { name: 'mail.example.net' } });
  });

  it('helo evidence data: the HELO as given, and the rDNS it was compared with', async () => {
    const ctx = { ip: ip(IP), ourName: () => false, ourIps: new Set<string>() };
    assert.deepEqual(heloStaticEvidence('[198.51.100.7]', ctx), [
      { check: 'helo.syntax', outcome: 'pass', reason: 'literal', data: { helo: '[198.51.100.7]' } },
      { check: 'helo.literal', outcome: 'pass', reason: 'matches_client', data: { helo: '[198.51.100.7]' } },
    ]);
    assert.deepEqual(heloStaticEvidence('bad!', ctx), [{ check: 'helo.syntax', outcome: 'fail', reason: 'bad_characters', data: { helo: 'bad!' } }]);
    const deps = stub({ 'out.example.org': [IP], 'slow.example.org': 'timeout' });
    assert.deepEqual(await heloMatchEvidence('out.example.org', ip(IP), null, deps), { check: 'helo.match', outcome: 'pass', reason: 'resolves_to_client', data: { helo: 'out.example.org', rdns: null } });
    assert.deepEqual(await heloMatchEvidence('mx1.example.org', ip(IP), 'out.example.org', deps), { check: 'helo.match', outcome: 'pass', reason: 'same_domain_as_rdns', data: { helo: 'mx1.example.org', rdns: 'out.example.org' } });
    assert.deepEqual(await heloMatchEvidence('slow.example.org', ip(IP), 'mx.example.net', deps), { check: 'helo.match', outcome: 'err', reason: 'dns_error', data: { helo: 'slow.example.org', rdns: 'mx.example.net' } });
    assert.deepEqual(await heloMatchEvidence('other.example.org', ip(IP), null, deps, true), { check: 'helo.match', outcome: 'err', reason: 'rdns_unknown', data: { helo: 'other.example.org', rdns: null } });
    assert.equal((await heloMatchEvidence('out.example.org', ip(IP), null, deps, true))?.outcome, 'pass', 'a HELO that resolves to the client passes even when the rDNS is unknown');
    assert.equal(await heloMatchEvidence('nope', ip(IP), null, deps), null, 'an invalid HELO is judged by helo.syntax');
  });

  it('the rDNS domain comparison needs a registered domain on both sides', async () => {
    const deps = stub({});
    assert.equal((await heloMatchEvidence('mx.example.org', ip(IP), 'example.org', deps))?.reason, 'same_domain_as_rdns');
    assert.equal((await heloMatchEvidence('mx.example.org', ip(IP), 'org', deps))?.reason, 'mismatch');
    assert.equal((await heloMatchEvidence('mx.example.org', ip(IP), '', deps))?.reason, 'mismatch');
    assert.deepEqual(deps.asked.at(-1), ['mx.example.org', IP], 'the HELO is asked for the client address');
  });
});

describe('rdns: names and HELO forms, strictly', () => {
  const IP = '198.51.100.7';

  it('a failed PTR lookup gives no names and no errors', async () => {
    assert.deepEqual(await fcrdns(ip(IP), { status: 'error', names: ['ignored.example.com'] }, stub({}), 3), { iprev: 'temperror', confirmed: null, names: [], errors: [] });
  });

  it('PTR names with underscores are followed (real PTR records have them)', async () => {
    const r = await fcrdns(ip(IP), { status: 'ok', names: ['Host_1.Example.com.'] }, stub({ 'host_1.example.com': [IP] }), 3);
    assert.equal(r.confirmed, 'host_1.example.com');
  });

  it('generic patterns match without regard to case', () => {
    assert.equal(compilePattern('DYN').test('dyn-1.example.net'), true);
    assert.equal(compilePattern('^pool').test('POOL-7.example.net'), true);
  });

  it('HELO forms: space around a literal, half brackets, underscores', () => {
    assert.deepEqual(heloForm(' [192.0.2.1] '), { kind: 'literal', ip: ip('192.0.2.1'), text: '[192.0.2.1]' });
    assert.deepEqual(heloForm('[192.0.2.1'), { kind: 'invalid', reason: 'bad_characters' });
    assert.deepEqual(heloForm('192.0.2.1]'), { kind: 'invalid', reason: 'bad_characters' });
    assert.deepEqual(heloForm('[]'), { kind: 'invalid', reason: 'bad_literal' });
    assert.deepEqual(heloForm('mail_1.example.com'), { kind: 'name', name: 'mail_1.example.com' });
    assert.deepEqual(heloForm('[IPv6:2001:DB8::1]'), { kind: 'literal', ip: ip('2001:db8::1'), text: '[IPv6:2001:DB8::1]' });
  });

  it('a HELO and an rDNS name under one private registered domain (github.io style) match', async () => {
    const deps = stub({});
    assert.equal((await heloMatchEvidence('mx1.myapp.github.io', ip(IP), 'out.myapp.github.io', deps))?.reason, 'same_domain_as_rdns');
    assert.equal((await heloMatchEvidence('mx1.myapp.github.io', ip(IP), 'out.other.github.io', deps))?.reason, 'mismatch');
  });
});
