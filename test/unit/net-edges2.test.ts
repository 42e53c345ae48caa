/** Edges of net.ts that the main net tests reach only together with another limit. */
import assert from 'node:assert/strict';
import { IpSet, normalizeHostname, parseCidr, parseIp } from '../../plugins/shield/core/net';

describe('net: edges (2)', () => {
  it('brackets are stripped only as a pair: "[::1" is not the address "::"', () => {
    assert.equal(parseIp('[::1'), null);
    assert.equal(parseIp('[::12'), null);
    assert.equal(parseIp('[192.0.2.1'), null);
    assert.equal(parseIp('[::1]')?.text, '::1');
  });

  it('a name longer than 253 characters is refused even when every label is short', () => {
    const label = 'a'.repeat(49);
    const n253 = `${label}.${label}.${label}.${label}.${label}.abc`; // 5 x 50 + 3
    assert.equal(n253.length, 253);
    assert.equal(normalizeHostname(n253), n253);
    assert.equal(normalizeHostname(`${n253}.`), n253, 'the final dot does not count');
    assert.equal(normalizeHostname(`${n253}d`), null, '254 characters, every label at most 50');
    assert.equal(normalizeHostname(`${n253}d`, { underscore: true }), null);
  });

  it('an ASCII name is never run through URL host parsing: "127.1" stays a name, not 127.0.0.1', () => {
    assert.equal(normalizeHostname('127.1'), '127.1');
    assert.equal(normalizeHostname('0x7f.1'), '0x7f.1');
    assert.equal(normalizeHostname('1.2.3'), '1.2.3');
  });

  it('IpSet.delete: removes the exact range only, says whether it was there, and keeps lookups working', () => {
    const s = new IpSet<string>();
    s.add('192.0.2.0/24', 'wide');
    s.add('192.0.2.128/25', 'narrow');
    s.add('192.0.2.0/25', 'low');
    s.add('2001:db8::/32', 'v6');
    assert.equal(s.size, 4);
    assert.equal(s.delete('192.0.2.128/26'), false, 'no range of that length');
    assert.equal(s.delete('198.51.100.0/24'), false, 'a length in use, another network');
    assert.equal(s.delete('2001:db8::/48'), false);
    assert.equal(s.size, 4);
    assert.equal(s.delete('192.0.2.128/25'), true);
    assert.equal(s.size, 3);
    assert.equal(s.delete('192.0.2.128/25'), false, 'already gone');
    assert.equal(s.size, 3);
    assert.equal(s.match('192.0.2.200')?.value, 'wide', 'the wider range answers now');
    assert.equal(s.match('192.0.2.1')?.value, 'low', 'the other /25 is still there');
    assert.equal(s.delete('192.0.2.0/25'), true);
    assert.equal(s.match('192.0.2.1')?.value, 'wide');
    assert.equal(s.delete(parseCidr('192.0.2.0/24')), true, 'a parsed Cidr works as well as text');
    assert.equal(s.size, 1);
    assert.equal(s.match('192.0.2.1'), null);
    assert.equal(s.has('192.0.2.200'), false);
    assert.equal(s.match('2001:db8::1')?.value, 'v6', 'the other family is untouched');
    assert.equal(s.delete('2001:db8::/32'), true);
    assert.equal(s.size, 0);
    assert.equal(s.match('2001:db8::1'), null);
    s.add('192.0.2.128/25', 'again');
    assert.equal(s.size, 1);
    assert.equal(s.match('192.0.2.200')?.value, 'again', 'a length emptied and used again');
  });

  it('IpSet.delete: a length that still has ranges stays in use', () => {
    const s = new IpSet<string>();
    s.add('192.0.2.0/25', 'a');
    s.add('192.0.2.128/25', 'b');
    s.add('192.0.2.0/24', 'wide');
    assert.equal(s.delete('192.0.2.0/25'), true);
    assert.equal(s.match('192.0.2.200')?.value, 'b');
    assert.equal(s.match('192.0.2.1')?.value, 'wide');
  });

  it('IpSet.delete: emptying one prefix length keeps the others longest first', () => {
    for (const order of [['192.0.0.0/16', '192.0.2.0/24', '192.0.2.0/25', '192.0.2.0/26'], ['192.0.2.0/26', '192.0.2.0/25', '192.0.2.0/24', '192.0.0.0/16']]) {
      const s = new IpSet<string>();
      for (const c of order) s.add(c, c);
      s.add('10.0.0.0/8', 'other');
      assert.equal(s.delete('10.0.0.0/8'), true);
      assert.equal(s.match('192.0.2.1')?.value, '192.0.2.0/26', order.join(' '));
      assert.equal(s.delete('192.0.0.0/16'), true);
      assert.equal(s.match('192.0.2.1')?.value, '192.0.2.0/26');
      assert.equal(s.match('192.0.2.100')?.value, '192.0.2.0/25');
      assert.equal(s.match('192.0.2.200')?.value, '192.0.2.0/24');
      assert.equal(s.delete('192.0.2.0/26'), true);
      assert.equal(s.match('192.0.2.1')?.value, '192.0.2.0/25');
    }
  });
});
