import assert from 'node:assert/strict';
import { Overrides, clientSubject, connectPlan, describeRate, netSubject, parseOverride, parseOverrideLine, transactionRates, type Limits } from '../../plugins/shield/checks/limits';
import { parseIp, type ParsedIp } from '../../plugins/shield/core/net';
import { parseConfig } from '../../plugins/shield/core/config';
import { LIMIT_SCHEMA } from '../../plugins/shield/checks/limit-config';

const ip = (s: string) => parseIp(s) as ParsedIp;

/** the shipped defaults, flattened as the plugin flattens them (the check-schemas test pins their values) */
const DEFAULTS = parseConfig('shield.limit.ini', LIMIT_SCHEMA, {});
const BASE: Limits = Object.freeze({ ...DEFAULTS.concurrency, ...DEFAULTS.rates, ...DEFAULTS.session });

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

describe('limits: edges', () => {
  it('netblocks whose prefix is not a whole octet, and the extremes', () => {
    assert.equal(netSubject(ip('198.51.100.7'), 20, 48), '198.51.96.0/20');
    assert.equal(netSubject(ip('198.51.100.7'), 32, 48), '198.51.100.7/32');
    assert.equal(netSubject(ip('198.51.100.7'), 8, 48), '198.0.0.0/8');
    assert.equal(netSubject(ip('198.51.100.255'), 31, 48), '198.51.100.254/31');
    assert.equal(netSubject(ip('2001:db8:abcd:ef12::1'), 24, 56), '2001:db8:abcd:ef00::/56');
    assert.equal(netSubject(ip('2001:db8:abcd:ef12::1'), 24, 36), '2001:db8:a000::/36');
    assert.equal(netSubject(ip('2001:db8::ffff'), 24, 128), '2001:db8::ffff/128');
    assert.equal(clientSubject(ip('2001:db8:1:2:3:4:5:6'), 48), '2001:db8:1::/48');
  });

  it('a limit that is 0 or off takes no lease and no rate; the keys carry the subject', () => {
    const none: Limits = { ...BASE, conc_ip: 0, conn_ip: null };
    const p = connectPlan({ ip: ip('2001:db8:1:2::9'), limits: none, exemptClient: false, ipv6Prefix: 64, netV4: 24, netV6: 48 });
    assert.deepEqual(p, { leases: [], rates: [], names: [] });
    const all: Limits = { ...BASE, conc_ip: 3, conc_net: 30, conc_total: 300, conn_ip: { limit: 5, windowSec: 60 }, conn_net: { limit: 50, windowSec: 60 }, daily_ip: { limit: 500, windowSec: 86400 } };
    const q = connectPlan({ ip: ip('2001:db8:1:2::9'), limits: all, exemptClient: false, ipv6Prefix: 64, netV4: 24, netV6: 48 });
    assert.deepEqual(q.leases, [
      { key: 'limit:conc:ip:2001:db8:1:2::/64', max: 3 },
      { key: 'limit:conc:net:2001:db8:1::/48', max: 30 },
      { key: 'limit:conc:total', max: 300 },
    ]);
    assert.deepEqual(q.rates, [
      { key: 'limit:rate:conn_ip:2001:db8:1:2::/64', limit: 5, windowSec: 60 },
      { key: 'limit:rate:conn_net:2001:db8:1::/48', limit: 50, windowSec: 60 },
      { key: 'limit:rate:daily_ip:2001:db8:1:2::/64', limit: 500, windowSec: 86400 },
    ]);
    assert.deepEqual(q.names, ['conc_ip', 'conc_net', 'conc_total', 'conn_ip', 'conn_net', 'daily_ip']);
    const ex = connectPlan({ ip: ip('2001:db8:1:2::9'), limits: all, exemptClient: true, ipv6Prefix: 64, netV4: 24, netV6: 48 });
    assert.deepEqual(ex, { leases: [{ key: 'limit:conc:total', max: 300 }], rates: [], names: ['conc_total'] });
  });

  it('transaction rates: every rate that is on, with its key; none for a missing subject', () => {
    const limits: Limits = { ...BASE, rcpt_ip: { limit: 100, windowSec: 60 }, rcpt_sender_domain: { limit: 500, windowSec: 3600 } };
    const t = transactionRates('rcpt', { limits, clientSubject: '198.51.100.7', exemptIp: false, senderDomain: 'example.org', user: 'alice' });
    assert.deepEqual(t.rates, [
      { key: 'limit:rate:rcpt_ip:198.51.100.7', limit: 100, windowSec: 60 },
      { key: 'limit:rate:rcpt_sender_domain:example.org', limit: 500, windowSec: 3600 },
      { key: 'limit:rate:rcpt_user:alice', limit: 1000, windowSec: 3600 },
    ]);
    assert.deepEqual(t.names, ['rcpt_ip', 'rcpt_sender_domain', 'rcpt_user']);
    const anon = transactionRates('rcpt', { limits, clientSubject: '198.51.100.7', exemptIp: false, senderDomain: null, user: null });
    assert.deepEqual(anon.names, ['rcpt_ip'], 'the null sender has no domain to count; no user, no per-user rate');
    assert.deepEqual(transactionRates('msg', { limits: BASE, clientSubject: 'x', exemptIp: false, senderDomain: 'example.org', user: null }), { rates: [], names: [] });
  });

  it('describes windows in the largest whole unit', () => {
    assert.equal(describeRate({ limit: 1, windowSec: 3600 }), '1 per 1h');
    assert.equal(describeRate({ limit: 1, windowSec: 7200 }), '1 per 2h');
    assert.equal(describeRate({ limit: 1, windowSec: 172800 }), '1 per 2d');
    assert.equal(describeRate({ limit: 1, windowSec: 5400 }), '1 per 90m');
    assert.equal(describeRate({ limit: 1, windowSec: 120 }), '1 per 2m');
    assert.equal(describeRate({ limit: 1, windowSec: 1 }), '1 per 1s');
    assert.equal(describeRate({ limit: 7, windowSec: 86400 + 3600 }), '7 per 25h');
  });

  it('override text: spaces anywhere, every count and rate name; bad pairs say what to write', () => {
    assert.deepEqual(parseOverride('  max_rcpts=5\tmax_errors=off  daily_ip=100/1d '), { max_rcpts: 5, max_errors: 0, daily_ip: { limit: 100, windowSec: 86400 } });
    assert.throws(() => parseOverride('conc_ip'), { message: '"conc_ip": write name=value' });
    assert.throws(() => parseOverride('conc_ip='), { message: '"conc_ip=": write name=value' });
    assert.throws(() => parseOverride('Conc_ip=5'), /write name=value/);
    assert.throws(() => parseOverride('conc_ip=-5'), { message: '"conc_ip=-5": conc_ip takes a number or off' });
    assert.throws(() => parseOverride('conc_ip=5x'), /conc_ip takes a number or off/);
    assert.throws(
      () => parseOverride('speed=9'),
      {
        message:
          '"speed=9": unknown limit speed (one of conc_node, conc_ip, conc_net, conc_total, max_rcpts, max_rcpts_relay, max_mails, max_mails_relay, max_unrecognized, max_errors, conn_ip, conn_net, daily_ip, msg_ip, msg_sender_domain, msg_user, rcpt_ip, rcpt_sender_domain, rcpt_user)',
      },
    );
    assert.throws(() => parseOverride('   '), { message: 'no limit given' });
    assert.throws(() => parseOverrideLine('192.0.2.0/24'), /no limit given/);
    assert.deepEqual(parseOverrideLine('  2001:DB8:77::/48   conc_ip=off  conn_ip=off '), { cidr: '2001:db8:77::/48', limits: { conc_ip: 0, conn_ip: null } });
  });

  it('overrides: count their ranges; a range with nothing else keeps the base values; the result is frozen', () => {
    const o = new Overrides();
    assert.equal(o.size, 0);
    o.add('192.0.2.0/24', { conc_ip: 50 });
    o.add('2001:db8::/32', { conc_ip: 7 });
    assert.equal(o.size, 2);
    const l = o.apply(BASE, ip('192.0.2.9'));
    assert.equal(l.conc_ip, 50);
    assert.equal(l.max_rcpts, 100);
    assert.ok(Object.isFrozen(l));
    assert.equal(o.apply(BASE, ip('2001:db8::1')).conc_ip, 7);
  });
});
