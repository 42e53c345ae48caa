import assert from 'node:assert/strict';
import { Overrides, clientSubject, connectPlan, describeRate, netSubject, parseOverride, parseOverrideLine, transactionRates, type Limits } from '../../plugins/shield/checks/limits';
import { parseIp, type ParsedIp } from '../../plugins/shield/core/net';

const ip = (s: string) => parseIp(s) as ParsedIp;

const BASE: Limits = Object.freeze({
  conc_node: 0,
  conc_ip: 10,
  conc_net: 0,
  conc_total: 0,
  max_rcpts: 100,
  max_rcpts_relay: 1000,
  max_mails: 50,
  max_mails_relay: 500,
  max_unrecognized: 10,
  max_errors: 10,
  conn_ip: { limit: 60, windowSec: 60 },
  conn_net: null,
  daily_ip: null,
  msg_ip: null,
  msg_sender_domain: null,
  msg_user: { limit: 200, windowSec: 3600 },
  rcpt_ip: null,
  rcpt_sender_domain: null,
  rcpt_user: { limit: 1000, windowSec: 3600 },
});

describe('limits: subjects and keys', () => {
  it('counts IPv4 per address and IPv6 per /64 (configurable); IPv4-mapped is IPv4', () => {
    assert.equal(clientSubject(ip('198.51.100.7'), 64), '198.51.100.7');
    assert.equal(clientSubject(ip('2001:db8:1:2:aaaa::1'), 64), '2001:db8:1:2::/64');
    assert.equal(clientSubject(ip('2001:db8:1:2:bbbb::9'), 64), '2001:db8:1:2::/64', 'same /64, same client');
    assert.equal(clientSubject(ip('2001:db8:1:2:aaaa::1'), 128), '2001:db8:1:2:aaaa::1/128');
    assert.equal(clientSubject(ip('::ffff:198.51.100.7'), 64), '198.51.100.7');
  });

  it('netblocks: IPv4 /24 and IPv6 /48 by default', () => {
    assert.equal(netSubject(ip('198.51.100.7'), 24, 48), '198.51.100.0/24');
    assert.equal(netSubject(ip('198.51.100.7'), 16, 48), '198.51.0.0/16');
    assert.equal(netSubject(ip('2001:db8:1:2::1'), 24, 48), '2001:db8:1::/48');
  });

  it('plans the connect admission: leases then rates, only the limits that are on, none per IP for exempt clients', () => {
    const scope = { ip: ip('198.51.100.7'), limits: { ...BASE, conc_net: 20, conc_total: 500, daily_ip: { limit: 2000, windowSec: 86400 } }, exemptClient: false, ipv6Prefix: 64, netV4: 24, netV6: 48 };
    const p = connectPlan(scope);
    assert.deepEqual(p.leases, [
      { key: 'limit:conc:ip:198.51.100.7', max: 10 },
      { key: 'limit:conc:net:198.51.100.0/24', max: 20 },
      { key: 'limit:conc:total', max: 500 },
    ]);
    assert.deepEqual(p.rates.map((r) => r.key), ['limit:rate:conn_ip:198.51.100.7', 'limit:rate:daily_ip:198.51.100.7']);
    assert.deepEqual(p.names, ['conc_ip', 'conc_net', 'conc_total', 'conn_ip', 'daily_ip']);
    const ex = connectPlan({ ...scope, exemptClient: true });
    assert.deepEqual(ex.names, ['conc_total'], 'the fleet total still counts relay clients');
  });

  it('transaction rates: per IP unless exempt, per sender domain, per user', () => {
    const limits = { ...BASE, msg_ip: { limit: 10, windowSec: 60 }, msg_sender_domain: { limit: 100, windowSec: 3600 } };
    const t = transactionRates('msg', { limits, clientSubject: '198.51.100.7', exemptIp: false, senderDomain: 'example.org', user: null });
    assert.deepEqual(t.names, ['msg_ip', 'msg_sender_domain']);
    assert.deepEqual(t.rates[1], { key: 'limit:rate:msg_sender_domain:example.org', limit: 100, windowSec: 3600 });
    const auth = transactionRates('msg', { limits, clientSubject: '198.51.100.7', exemptIp: true, senderDomain: null, user: 'alice' });
    assert.deepEqual(auth.names, ['msg_user']);
    assert.deepEqual(transactionRates('rcpt', { limits, clientSubject: 'x', exemptIp: true, senderDomain: 'example.org', user: 'bob' }).names, ['rcpt_user']);
  });

  it('describes rates for replies', () => {
    assert.equal(describeRate({ limit: 30, windowSec: 60 }), '30 per 1m');
    assert.equal(describeRate({ limit: 2000, windowSec: 86400 }), '2000 per 1d');
    assert.equal(describeRate({ limit: 5, windowSec: 90 }), '5 per 90s');
  });
});

describe('limits: overrides', () => {
  it('parses "name=value" pairs: numbers, rates, off', () => {
    assert.deepEqual(parseOverride('conc_ip=50 conn_ip=600/1m msg_user=off conc_net=off'), { conc_ip: 50, conn_ip: { limit: 600, windowSec: 60 }, msg_user: null, conc_net: 0 });
    assert.throws(() => parseOverride('conc_ip=lots'), /conc_ip takes a number or off/);
    assert.throws(() => parseOverride('speed=9'), /unknown limit speed/);
    assert.throws(() => parseOverride('conn_ip=0/1m'), /at least 1/);
    assert.throws(() => parseOverride(''), /no limit given/);
    assert.throws(() => parseOverrideLine('192.0.2.5/24 conc_ip=5'), /host bits/);
  });

  it('the most specific range decides; other limits stay as configured', () => {
    const o = new Overrides();
    o.add('192.0.2.0/24', { conc_ip: 50, conn_ip: null });
    o.add('192.0.2.128/25', { conc_ip: 5 });
    assert.equal(o.apply(BASE, ip('192.0.2.7')).conc_ip, 50);
    assert.equal(o.apply(BASE, ip('192.0.2.7')).conn_ip, null);
    assert.equal(o.apply(BASE, ip('192.0.2.200')).conc_ip, 5);
    assert.deepEqual(o.apply(BASE, ip('192.0.2.200')).conn_ip, { limit: 60, windowSec: 60 }, 'not listed in the /25: the base value');
    assert.equal(o.apply(BASE, ip('203.0.113.1')), BASE);
  });
});
