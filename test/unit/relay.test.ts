/** The relay engine, pure: every decision path. */
import assert from 'node:assert/strict';
import { ACCEPTED_DOMAIN, checkRelay, isLocalDomain, type RelayPolicy } from '../../plugins/shield/checks/relay';
import { IpSet, normalizeHostname } from '../../plugins/shield/core/net';

const normalizeDomain = (s: string) => normalizeHostname(s, ACCEPTED_DOMAIN);

const policy = (over: Partial<RelayPolicy> = {}): RelayPolicy => ({
  networks: IpSet.of(['192.0.2.0/24', '2001:db8::/48', '198.51.100.7']),
  domains: new Set(['example.com', 'xn--bcher-kva.example', '[192.0.2.200]']),
  acceptSubdomains: false,
  authRelay: true,
  ...over,
});
const rcpt = (user: string | null, host: string | null, original?: string) => ({ user, host, original: original ?? `<${user}@${host}>` });
const check = (ip: string, r: ReturnType<typeof rcpt>, auth: string | null = null, p = policy()) => checkRelay({ clientIp: ip, authUser: auth, rcpt: r }, p);

describe('relay engine', () => {
  it('normalises domains: case, one trailing dot, IDN to A-label, literals', () => {
    assert.equal(normalizeDomain('Example.COM.'), 'example.com');
    assert.equal(normalizeDomain('bücher.example'), 'xn--bcher-kva.example');
    assert.equal(normalizeDomain('[IPv6:2001:DB8::1]'), '[2001:db8::1]');
    assert.equal(normalizeDomain('[::ffff:192.0.2.1]'), '[192.0.2.1]');
    assert.equal(normalizeDomain('example..com'), null);
    assert.equal(normalizeDomain('-bad.example'), null);
    assert.equal(normalizeDomain('[not-an-ip]'), null);
    assert.equal(normalizeDomain(''), null);
  });

  it('relay networks and authenticated users pass for any domain', () => {
    assert.equal(check('192.0.2.9', rcpt('u', 'other.example')).reason, 'relay_network');
    assert.equal(check('::ffff:192.0.2.9', rcpt('u', 'other.example')).reason, 'relay_network');
    assert.equal(check('2001:db8:0:ffff::1', rcpt('u', 'other.example')).reason, 'relay_network');
    assert.equal(check('198.51.100.7', rcpt('u', 'other.example')).outcome, 'pass');
    assert.equal(check('198.51.100.8', rcpt('u', 'other.example')).reason, 'not_local');
    assert.equal(check('203.0.113.1', rcpt('u', 'other.example'), 'alice').reason, 'authenticated');
    assert.equal(check('203.0.113.1', rcpt('u', 'other.example'), 'alice', policy({ authRelay: false })).reason, 'not_local');
  });

  it('local domains pass for anyone; subdomains only when accepted', () => {
    assert.equal(check('203.0.113.1', rcpt('u', 'EXAMPLE.com')).reason, 'local_domain');
    assert.equal(check('203.0.113.1', rcpt('u', 'bücher.example')).reason, 'local_domain');
    assert.equal(check('203.0.113.1', rcpt('u', 'sub.example.com')).reason, 'not_local');
    assert.equal(check('203.0.113.1', rcpt('u', 'sub.example.com'), null, policy({ acceptSubdomains: true })).reason, 'local_domain');
    assert.equal(check('203.0.113.1', rcpt('u', 'notexample.com'), null, policy({ acceptSubdomains: true })).reason, 'not_local');
    // a subdomain is a whole label away: not a look-alike that ends in a local domain after its first dot
    assert.equal(check('203.0.113.1', rcpt('u', 'a.notexample.com'), null, policy({ acceptSubdomains: true })).reason, 'not_local');
    assert.equal(check('203.0.113.1', rcpt('u', 'mx.a-example.com'), null, policy({ acceptSubdomains: true })).reason, 'not_local');
    assert.equal(check('203.0.113.1', rcpt('u', 'xexample.com'), null, policy({ acceptSubdomains: true })).reason, 'not_local');
    // a recipient without a local part (Haraka gives user null) is judged by its domain alone
    const noUser = check('203.0.113.1', rcpt(null, 'example.com', '<@example.com>'));
    assert.equal(noUser.reason, 'local_domain');
    assert.equal(noUser.data.rcpt, '@example.com');
    assert.equal(check('203.0.113.1', rcpt(null, null, '<>')).reason, 'unqualified');
    assert.equal(isLocalDomain('a.b.example.com', { domains: new Set(['example.com']), acceptSubdomains: true }), true);
  });

  it('refuses routing in the local part, quoted or not', () => {
    for (const user of ['u%other.example', 'other.example!u', '"u@other.example"', '"u%x"', '"a!b"']) {
      const ev = check('203.0.113.1', rcpt(user, 'example.com'));
      assert.equal(ev.outcome, 'fail', user);
      assert.equal(ev.reason, 'sender_routing', user);
    }
  });

  it('judges a source-routed address by its final mailbox and notes the route', () => {
    const ev = check('203.0.113.1', rcpt('u', 'other.example', '<@example.com:u@other.example>'));
    assert.equal(ev.reason, 'not_local');
    assert.equal(ev.data.sourceRoute, true);
    assert.equal(ev.data.rcpt, 'u@other.example', 'the final mailbox is what the log names');
    // the route is noted however the client wrote it; a plain address has none
    for (const original of [' <@example.com:u@other.example>', '@example.com:u@other.example', '< @example.com:u@other.example>']) {
      assert.equal(check('203.0.113.1', rcpt('u', 'other.example', original)).data.sourceRoute, true, original);
    }
    for (const original of ['<u@other.example>', 'u@other.example', '<"a@b"@other.example>']) {
      assert.equal(check('203.0.113.1', rcpt('u', 'other.example', original)).data.sourceRoute, false, original);
    }
    assert.equal(check('203.0.113.1', rcpt('postmaster', null, '<postmaster>')).data.rcpt, 'postmaster');
    assert.equal(check('203.0.113.1', rcpt('u', 'example.com', '<@other.example:u@example.com>')).reason, 'local_domain');
  });

  it('refuses address literals unless listed as local', () => {
    assert.equal(check('203.0.113.1', rcpt('u', '[192.0.2.1]')).reason, 'address_literal');
    assert.equal(check('203.0.113.1', rcpt('u', '[ipv6:2001:db8::1]')).reason, 'address_literal');
    assert.equal(check('203.0.113.1', rcpt('u', '[192.0.2.200]')).reason, 'local_domain');
  });

  it('unqualified recipients fail except postmaster; broken domains fail', () => {
    assert.equal(check('203.0.113.1', rcpt('postmaster', null, '<postmaster>')).reason, 'postmaster');
    assert.equal(check('203.0.113.1', rcpt('PostMaster', '', '<PostMaster>')).reason, 'postmaster');
    assert.equal(check('203.0.113.1', rcpt('user', null, '<user>')).reason, 'unqualified');
    assert.equal(check('203.0.113.1', rcpt('user', 'exa mple.com')).reason, 'bad_domain');
  });
});
