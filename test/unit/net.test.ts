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

describe('net: address edges', () => {
  it('IPv4: only four decimal parts 0..255, no leading zeros; surrounding space and brackets are fine', () => {
    assert.deepEqual(parseIp(' 192.0.2.1 '), { family: 4, bytes: [192, 0, 2, 1], text: '192.0.2.1' });
    assert.deepEqual(parseIp('[192.0.2.1]'), { family: 4, bytes: [192, 0, 2, 1], text: '192.0.2.1' });
    assert.equal(parseIp('0.0.0.0')?.text, '0.0.0.0');
    assert.deepEqual(parseIp('255.255.255.255')?.bytes, [255, 255, 255, 255]);
    for (const bad of ['256.0.0.1', '1.2.3.256', '010.1.1.1', '1.2.3', '1.2.3.4.5', '1000.1.1.1', '192.0.2.1]', '[192.0.2.1', 'a192.0.2.1', '192.0.2.1a', '']) {
      assert.equal(parseIp(bad), null, bad);
    }
  });

  it('IPv6: any case, the IPv6: tag of literals, zone ids dropped; junk is null', () => {
    const v6 = parseIp('IPV6:2001:DB8::1');
    assert.equal(v6?.family, 6);
    assert.equal(v6?.text, '2001:db8::1');
    assert.deepEqual(v6?.bytes, [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert.equal(parseIp('ipv6:2001:db8::1')?.text, '2001:db8::1');
    assert.equal(parseIp('[2001:db8::1]')?.text, '2001:db8::1');
    assert.equal(parseIp('fe80::1%eth0')?.text, 'fe80::1');
    assert.deepEqual(parseIp('::ffff:192.0.2.1')?.bytes, [192, 0, 2, 1]);
    for (const bad of ['gggg::1', ':::', '2001:db8::1::2', 'ipv6:', 'x-ipv6:2001:db8::1', '2001:db8::1/64']) assert.equal(parseIp(bad), null, bad);
  });
});

describe('net: CIDR edges', () => {
  it('canonical forms, both families, /0 to the full length; space around is fine', () => {
    assert.deepEqual(parseCidr(' 192.0.2.0/24 '), { family: 4, bytes: [192, 0, 2, 0], text: '192.0.2.0', prefix: 24, cidr: '192.0.2.0/24' });
    assert.equal(parseCidr('0.0.0.0/0').cidr, '0.0.0.0/0');
    assert.equal(parseCidr('192.0.2.7/32').cidr, '192.0.2.7/32');
    assert.equal(parseCidr('::/0').cidr, '::/0');
    assert.equal(parseCidr('2001:DB8::/32').cidr, '2001:db8::/32');
    assert.equal(parseCidr('2001:db8::1/128').prefix, 128);
    assert.equal(parseCidr('::ffff:192.0.2.7/128').cidr, '192.0.2.7/32');
    assert.equal(parseCidr('::ffff:0.0.0.0/96').cidr, '0.0.0.0/0');
  });

  it('refuses what is not a range, with a message that says why', () => {
    assert.throws(() => parseCidr('nope/24'), { message: '"nope/24" is not an IP address or CIDR range' });
    assert.throws(() => parseCidr('192.0.2.0/'), { message: '"192.0.2.0/": bad prefix length' });
    assert.throws(() => parseCidr('192.0.2.0/1234'), { message: '"192.0.2.0/1234": bad prefix length' });
    assert.throws(() => parseCidr('192.0.2.0/-1'), { message: '"192.0.2.0/-1": bad prefix length' });
    assert.throws(() => parseCidr('192.0.2.0/24x'), /bad prefix length/);
    assert.throws(() => parseCidr('192.0.2.0/33'), { message: '"192.0.2.0/33": prefix length must be 0..32' });
    assert.throws(() => parseCidr('2001:db8::/129'), { message: '"2001:db8::/129": prefix length must be 0..128' });
    assert.throws(() => parseCidr('::ffff:192.0.2.0/95'), { message: '"::ffff:192.0.2.0/95": prefix length must be 0..32' });
    assert.throws(() => parseCidr('2001:db8::1/64'), { message: '"2001:db8::1/64" has host bits set; did you mean 2001:db8::/64?' });
    assert.throws(() => parseCidr('192.0.2.1/31'), { message: '"192.0.2.1/31" has host bits set; did you mean 192.0.2.0/31?' });
    assert.equal(parseCidr('192.0.2.2/31').cidr, '192.0.2.2/31');
  });
});

describe('net: IpSet edges', () => {
  it('the most specific range wins whatever the order ranges were added in', () => {
    const s = new IpSet<string>();
    s.add('192.0.2.128/25', 'narrow');
    s.add('192.0.0.0/16', 'wider');
    s.add('192.0.2.0/24', 'wide');
    s.add('0.0.0.0/0', 'all');
    assert.equal(s.match('192.0.2.200')?.value, 'narrow');
    assert.equal(s.match('192.0.2.1')?.value, 'wide');
    assert.equal(s.match('192.0.9.1')?.value, 'wider');
    assert.deepEqual(s.match('203.0.113.9'), { cidr: '0.0.0.0/0', value: 'all' });
    assert.equal(s.match('2001:db8::1'), null, 'an IPv4 range never matches IPv6');
  });

  it('IPv4 with the high bit set, prefixes that are not whole octets, IPv6 likewise', () => {
    const s = new IpSet<string>();
    s.add('200.0.0.0/8', 'high');
    s.add('198.18.0.0/15', 'bench');
    s.add('2001:db8::/33', 'half');
    s.add('::/0', 'v6all');
    assert.equal(s.match('200.255.1.2')?.value, 'high');
    assert.equal(s.match('201.0.0.0'), null);
    assert.equal(s.match('198.19.255.255')?.value, 'bench');
    assert.equal(s.match('198.20.0.0'), null);
    assert.equal(s.match('198.17.255.255'), null);
    assert.equal(s.match('2001:db8:7fff::1')?.value, 'half');
    assert.equal(s.match('2001:db8:8000::1')?.value, 'v6all');
    assert.equal(s.match('192.0.2.1'), null, 'an IPv6 range never matches IPv4');
  });

  it('accept() skips a range whose value it refuses, for the next less specific one', () => {
    const s = new IpSet<{ on: boolean; name: string }>();
    s.add('192.0.2.0/24', { on: true, name: 'wide' });
    s.add('192.0.2.0/28', { on: false, name: 'narrow' });
    assert.equal(s.match('192.0.2.1')?.value.name, 'narrow');
    assert.equal(s.match('192.0.2.1', (v) => v.on)?.value.name, 'wide');
    assert.equal(s.match('192.0.2.1', () => false), null);
  });

  it('counts a range once; adding it again replaces its value; takes a parsed Cidr; IpSet.of', () => {
    const s = new IpSet<number>();
    const c = s.add('192.0.2.0/24', 1);
    assert.equal(c.cidr, '192.0.2.0/24');
    s.add('192.0.2.0/24', 2);
    s.add(parseCidr('2001:db8::/32'), 3);
    assert.equal(s.size, 2);
    assert.equal(s.match('192.0.2.9')?.value, 2);
    assert.equal(s.match(parseIp('2001:db8::9') as NonNullable<ReturnType<typeof parseIp>>)?.value, 3);
    const o = IpSet.of(['10.0.0.0/8', '2001:db8::1']);
    assert.equal(o.size, 2);
    assert.equal(o.has('10.1.2.3'), true);
    assert.equal(o.has('2001:db8::1'), true);
    assert.equal(o.has('2001:db8::2'), false);
    assert.equal(o.has('11.0.0.0'), false);
    assert.equal(new IpSet().size, 0);
  });
});

describe('net: host name edges', () => {
  it('at most 253 characters, labels of 1..63, no hyphen at either end', () => {
    const l63 = 'a'.repeat(63);
    const name253 = `${l63}.${l63}.${l63}.${'b'.repeat(61)}`;
    assert.equal(name253.length, 253);
    assert.equal(normalizeHostname(name253), name253);
    assert.equal(normalizeHostname(`${name253}.`), name253, 'the final dot does not count');
    assert.equal(normalizeHostname(`a${name253}`), null);
    assert.equal(normalizeHostname(`${l63}.example`), `${l63}.example`);
    assert.equal(normalizeHostname(`${l63}a.example`), null);
    assert.equal(normalizeHostname('-mail.example'), null);
    assert.equal(normalizeHostname('mail-.example'), null);
    assert.equal(normalizeHostname('m-1.example'), 'm-1.example');
    assert.equal(normalizeHostname('x.example'), 'x.example');
    assert.equal(normalizeHostname('mail_.example', { underscore: true }), 'mail_.example');
    assert.equal(normalizeHostname('-mail.example', { underscore: true }), null);
  });

  it('empty, a lone dot, spaces, or an IDN that does not convert: null', () => {
    assert.equal(normalizeHostname(''), null);
    assert.equal(normalizeHostname('.'), null);
    assert.equal(normalizeHostname('a b.example'), null);
    assert.equal(normalizeHostname('bü cher.example'), null);
    assert.equal(normalizeHostname('[192.0.2.1]', { underscore: true }), null);
    assert.equal(normalizeHostname('[not an ip]', { addressLiteral: true }), null);
    assert.equal(normalizeHostname('[192.0.2.1', { addressLiteral: true }), null);
    assert.equal(normalizeHostname(' [192.0.2.1] ', { addressLiteral: true }), '[192.0.2.1]');
    assert.equal(normalizeHostname('Example.COM', { addressLiteral: true }), 'example.com', 'names still work with addressLiteral');
    assert.equal(normalizeHostname(' X.Example. ', { validate: false, underscore: true }), 'x.example');
  });
});
