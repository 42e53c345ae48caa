import assert from 'node:assert/strict';
import { IpSet, normalizeHostname, parseCidr, parseIp } from '../../plugins/shield/core/net';

describe('net', () => {
  it('parses addresses, mapping IPv4-mapped IPv6 to IPv4', () => {
    assert.equal(parseIp('192.0.2.1')?.text, '192.0.2.1');
    assert.equal(parseIp('::ffff:192.0.2.1')?.text, '192.0.2.1');
    assert.equal(parseIp('::ffff:192.0.2.1')?.family, 4);
    assert.equal(parseIp('2001:DB8:0:0::1')?.text, '2001:db8::1');
    assert.equal(parseIp('[IPv6:2001:db8::1]')?.text, '2001:db8::1');
    assert.equal(parseIp('10'), null, 'legacy single-number form');
    assert.equal(parseIp('0x7f.1'), null, 'legacy hex form');
    assert.equal(parseIp('example.com'), null);
  });

  it('a bare address is one host; host bits set are an error', () => {
    assert.equal(parseCidr('192.0.2.7').cidr, '192.0.2.7/32');
    assert.equal(parseCidr('2001:db8::7').cidr, '2001:db8::7/128');
    assert.throws(() => parseCidr('192.0.2.7/24'), /host bits set; did you mean 192\.0\.2\.0\/24/);
    assert.throws(() => parseCidr('192.0.2.0/33'), /prefix length/);
    assert.equal(parseCidr('::ffff:192.0.2.0/120').cidr, '192.0.2.0/24');
  });

  it('matches the longest prefix, IPv4 and IPv6, at range edges', () => {
    const s = new IpSet<string>();
    s.add('192.0.2.0/24', 'wide');
    s.add('192.0.2.128/25', 'narrow');
    s.add('2001:db8::/32', 'v6');
    s.add('198.51.100.7', 'host');
    assert.equal(s.match('192.0.2.0')?.value, 'wide');
    assert.equal(s.match('192.0.2.127')?.value, 'wide');
    assert.equal(s.match('192.0.2.128')?.value, 'narrow');
    assert.equal(s.match('192.0.2.255')?.value, 'narrow');
    assert.equal(s.match('192.0.3.0'), null);
    assert.equal(s.match('::ffff:192.0.2.200')?.value, 'narrow');
    assert.equal(s.match('2001:db8:ffff:ffff:ffff:ffff:ffff:ffff')?.value, 'v6');
    assert.equal(s.match('2001:db9::'), null);
    assert.equal(s.match('198.51.100.7')?.value, 'host');
    assert.equal(s.match('198.51.100.8'), null);
    assert.equal(s.match('garbage'), null);
    assert.equal(s.size, 4);
  });

  it('normalizes host names one way, with the options its callers need', () => {
    assert.equal(normalizeHostname(' Mail.Example.COM. '), 'mail.example.com');
    assert.equal(normalizeHostname('bücher.example'), 'xn--bcher-kva.example');
    assert.equal(normalizeHostname('a..example'), null);
    assert.equal(normalizeHostname('_dmarc.example.com'), null, 'host names are letters, digits and hyphens');
    assert.equal(normalizeHostname('_dmarc.example.com', { underscore: true }), '_dmarc.example.com');
    assert.equal(normalizeHostname('[192.0.2.1]'), null, 'an address literal is not a name');
    assert.equal(normalizeHostname('[192.0.2.1]', { addressLiteral: true }), '[192.0.2.1]');
    assert.equal(normalizeHostname('[IPv6:2001:DB8::1]', { addressLiteral: true }), '[2001:db8::1]');
    assert.equal(normalizeHostname('[192.0.2.1].', { addressLiteral: true }), null);
    assert.equal(normalizeHostname(' Bad Name.Example. ', { validate: false }), 'bad name.example', 'the resolver keeps any name, only folded');
    assert.equal(normalizeHostname('', { validate: false }), '');
  });
});
