import assert from 'node:assert/strict';
import { classify, describeListings, domainItem, healthVerdict, ipQueryLabel, parsePattern, queryName, score, type Zone, type ZoneResult } from '../../plugins/shield/checks/dnsbl';
import { parseIp, type ParsedIp } from '../../plugins/shield/core/net';
import { parseDnsblConfig } from '../../plugins/shield/checks/dnsbl-config';

const ip = (s: string) => parseIp(s) as ParsedIp;

function zone(over: Partial<Zone> = {}): Zone {
  return {
    name: 'zen',
    type: 'ip',
    zone: 'zen.spamhaus.org',
    key: '',
    ipv4: true,
    ipv6: false,
    listed: [parsePattern('127.0.0.2 sbl 1', { label: 'x', weight: 1 }), parsePattern('127.0.0.4-127.0.0.7 xbl 1', { label: 'x', weight: 1 }), parsePattern('127.0.0.10-127.0.0.11 pbl 0.5', { label: 'x', weight: 1 })],
    errors: [],
    weight: 1,
    tagOnly: false,
    lookupUrl: 'https://check.example.net/?q={item}',
    identities: ['helo', 'rdns', 'mail_from'],
    registeredDomain: true,
    ...over,
  };
}

describe('dnsbl: return codes', () => {
  it('exact codes and ranges count with their labels; several matching patterns add up', () => {
    assert.deepEqual(classify(zone(), ['127.0.0.2']), { status: 'listed', codes: ['127.0.0.2'], labels: ['sbl'], weight: 1 });
    assert.deepEqual(classify(zone(), ['127.0.0.4', '127.0.0.11']), { status: 'listed', codes: ['127.0.0.4', '127.0.0.11'], labels: ['xbl', 'pbl'], weight: 1.5 });
    assert.deepEqual(classify(zone(), []), { status: 'clean' });
  });

  it('bitmasks (SURBL multi style) and octet wildcards (DNSWL trust levels)', () => {
    const multi = zone({ listed: [parsePattern('bitmask:8 ph 1', { label: 'x', weight: 1 }), parsePattern('bitmask:64 abuse 2', { label: 'x', weight: 1 })] });
    assert.equal((classify(multi, ['127.0.0.72']) as { weight: number }).weight, 3);
    assert.equal(classify(multi, ['127.0.0.4']).status, 'error', 'a code that matches no pattern is not a listing');
    const wl = zone({ type: 'allow', listed: [parsePattern('127.0.*.3 hi -2', { label: 'x', weight: 1 })] });
    assert.equal((classify(wl, ['127.0.15.3']) as { weight: number }).weight, -2);
    assert.throws(() => parsePattern('127.0.*.300', { label: 'x', weight: 1 }), /not a code pattern/);
    assert.throws(() => parsePattern('bitmask:0', { label: 'x', weight: 1 }), /1\.\.255/);
    assert.throws(() => parsePattern('127.0.0.9-127.0.0.2', { label: 'x', weight: 1 }), /backwards/);
    assert.throws(() => parsePattern('127.0.0.2 sbl heavy', { label: 'x', weight: 1 }), /not a number/);
  });

  it('never reads an error as a listing: 127.255.255.x, 127.0.0.1, zone error codes, answers outside 127/8', () => {
    for (const code of ['127.255.255.254', '127.255.255.252', '127.0.0.1', '10.0.0.2', '192.0.2.1']) {
      assert.equal(classify(zone(), [code]).status, 'error', code);
    }
    const dnswl = zone({ type: 'allow', listed: [], errors: [parsePattern('127.0.0.255', { label: 'e', weight: 0 })] });
    assert.equal(classify(dnswl, ['127.0.0.255']).status, 'error');
    // one bad code among good ones spoils the answer: the whole answer is suspect
    assert.equal(classify(zone(), ['127.0.0.2', '127.255.255.254']).status, 'error');
    // no listed patterns: any other 127/8 answer counts with the zone weight
    assert.deepEqual(classify(zone({ listed: [], weight: 2 }), ['127.0.0.9']), { status: 'listed', codes: ['127.0.0.9'], labels: [], weight: 2 });
  });
});

describe('dnsbl: return codes on a zone without listed[] patterns (any 127/8 answer counts)', () => {
  const open = zone({ name: 'anylist', listed: [], weight: 1 });
  it('127.0.0.1, 127.255.255.0/24 (both ends and the inside) and answers outside 127/8 are errors, never listings', () => {
    for (const code of ['127.0.0.1', '127.255.255.0', '127.255.255.1', '127.255.255.254', '127.255.255.255', '192.0.2.1', '10.0.0.2', '128.0.0.2', '126.255.255.255']) {
      const o = classify(open, [code]);
      assert.equal(o.status, 'error', code);
      assert.match((o as { why: string }).why, code.startsWith('127.') ? /is an error code/ : /outside 127\.0\.0\.0\/8/, code);
    }
  });
  it('the codes next to the error codes are listings: 127.0.0.0, 127.0.0.2, 127.255.254.255, 127.1.0.1', () => {
    for (const code of ['127.0.0.0', '127.0.0.2', '127.255.254.255', '127.1.0.1']) {
      assert.deepEqual(classify(open, [code]), { status: 'listed', codes: [code], labels: [], weight: 1 }, code);
    }
  });
  it('a bad code beside a good one spoils the whole answer', () => {
    assert.equal(classify(open, ['127.0.0.2', '127.0.0.1']).status, 'error');
    assert.equal(classify(open, ['192.0.2.1', '127.0.0.2']).status, 'error');
  });
  it('an IPv6 answer is an error', () => {
    assert.equal(classify(open, ['::ffff:127.0.0.2']).status, 'listed', 'IPv4-mapped is IPv4');
    assert.equal(classify(open, ['2001:db8::2']).status, 'error');
  });
});

describe('dnsbl: bitmask patterns match when any of their bits is set', () => {
  const z = zone({ listed: [parsePattern('bitmask:12 multi 1', { label: 'x', weight: 1 })] });
  it('bitmask:12 matches 127.0.0.4, 127.0.0.8 and 127.0.0.12; not 127.0.0.16 or 127.0.0.2', () => {
    for (const code of ['127.0.0.4', '127.0.0.8', '127.0.0.12', '127.0.0.28']) assert.equal(classify(z, [code]).status, 'listed', code);
    for (const code of ['127.0.0.16', '127.0.0.2', '127.0.0.3']) assert.equal(classify(z, [code]).status, 'error', code);
  });
  it('only on 127/8 answers, on the last octet', () => {
    assert.equal(parsePattern('bitmask:4', { label: 'x', weight: 1 }).test(parseIp('10.0.0.4') as ParsedIp), false);
    assert.equal(parsePattern('bitmask:4', { label: 'x', weight: 1 }).test(parseIp('127.4.0.0') as ParsedIp), false);
  });
});

describe('dnsbl: queries', () => {
  it('IPv4 reversed, IPv6 in nibbles, IPv4-mapped as IPv4', () => {
    assert.equal(ipQueryLabel(ip('192.0.2.99')), '99.2.0.192');
    assert.equal(ipQueryLabel(ip('2001:db8::1')), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2');
    assert.equal(ipQueryLabel(ip('::ffff:192.0.2.99')), '99.2.0.192');
  });

  it('puts a DQS key between the item and the zone', () => {
    assert.equal(queryName(zone({ zone: 'zen.dq.spamhaus.net', key: 'SECRETKEY' }), '2.0.0.127'), '2.0.0.127.SECRETKEY.zen.dq.spamhaus.net');
  });

  it('domain items: the registered domain (public-suffix aware) or the full name; never IPs or single labels', () => {
    assert.equal(domainItem(zone({ type: 'domain' }), 'Mail.Example.CO.UK.'), 'example.co.uk');
    assert.equal(domainItem(zone({ type: 'domain', registeredDomain: false }), 'mail.example.co.uk'), 'mail.example.co.uk');
    assert.equal(domainItem(zone({ type: 'domain' }), '192.0.2.1'), null);
    assert.equal(domainItem(zone({ type: 'domain' }), '[192.0.2.1]'), null);
    assert.equal(domainItem(zone({ type: 'domain' }), 'localhost'), null);
  });
});

describe('dnsbl: scoring', () => {
  const r = (z: Zone, codes: string[], identity: ZoneResult['identity'] = 'ip'): ZoneResult => ({ zone: z, item: '2.0.0.127', identity, outcome: classify(z, codes) });

  it('sums weights; allowlists pull the score down; tag-only zones do not count; errors do not count', () => {
    const zen = zone();
    const sc = zone({ name: 'spamcop', listed: [], weight: 1 });
    const wl = zone({ name: 'dnswl', type: 'allow', listed: [], weight: -1.5 });
    const tag = zone({ name: 'uce', listed: [], weight: 5, tagOnly: true });
    const s = score([r(zen, ['127.0.0.2']), r(sc, ['127.0.0.2']), r(wl, ['127.0.0.2']), r(tag, ['127.0.0.2']), r(zone({ name: 'broken' }), ['127.255.255.254'])]);
    assert.equal(s.score, 0.5);
    assert.deepEqual(s.listings.map((l) => l.zone.name), ['zen', 'spamcop', 'dnswl']);
    assert.deepEqual(s.tags.map((l) => l.zone.name), ['uce']);
    assert.deepEqual(s.errors.map((l) => l.zone.name), ['broken']);
  });

  it('describes listings with labels and lookup URLs, and never a DQS key', () => {
    const dq = zone({ name: 'zen', zone: 'zen.dq.spamhaus.net', key: 'SECRETKEY' });
    const text = describeListings([{ zone: dq, item: '198.51.100.7', identity: 'ip', outcome: classify(dq, ['127.0.0.4']) }]);
    assert.equal(text, 'zen (xbl) https://check.example.net/?q=198.51.100.7');
    assert.doesNotMatch(text, /SECRETKEY/);
  });
});

describe('dnsbl: zone health', () => {
  const points = { listed: '127.0.0.2', unlisted: '127.0.0.1' };
  it('healthy: lists 127.0.0.2, not 127.0.0.1', () => {
    assert.deepEqual(healthVerdict(zone(), points, { listed: ['127.0.0.2'], unlisted: [] }), { ok: true, why: '' });
  });
  it('a zone that starts listing 127.0.0.1 (everything) is disabled, and enabled again once it stops', () => {
    const bad = healthVerdict(zone(), points, { listed: ['127.0.0.2'], unlisted: ['127.0.0.2'] });
    assert.equal(bad.ok, false);
    assert.match(bad.why, /lists the test point 127\.0\.0\.1/);
    assert.equal(healthVerdict(zone(), points, { listed: ['127.0.0.2'], unlisted: [] }).ok, true);
  });
  it('a zone refusing our resolver (127.255.255.254 for everything) is disabled', () => {
    const v = healthVerdict(zone(), points, { listed: ['127.255.255.254'], unlisted: ['127.255.255.254'] });
    assert.equal(v.ok, false);
  });
  it('a zone that answers nothing, or does not list its listed point, is disabled', () => {
    assert.match(healthVerdict(zone(), points, { listed: null, unlisted: null }).why, /does not answer/);
    assert.match(healthVerdict(zone(), points, { listed: [], unlisted: [] }).why, /does not list its test point 127\.0\.0\.2/);
    assert.match(healthVerdict(zone(), points, { listed: null, unlisted: [] }).why, /does not list its test point/);
  });
  it('points that are not probed are not judged', () => {
    assert.equal(healthVerdict(zone(), { listed: '', unlisted: '' }, { listed: undefined, unlisted: undefined }).ok, true);
    assert.equal(healthVerdict(zone(), { listed: '', unlisted: '127.0.0.1' }, { listed: undefined, unlisted: [] }).ok, true);
  });
});

describe('dnsbl: config', () => {
  const base = { main: { zones: 'zen, wl' }, zen: { zone: 'zen.spamhaus.org', listed: ['127.0.0.2 sbl 1'] }, wl: { type: 'allow', zone: 'list.dnswl.org', weight: '2' }, off: { zone: 'off.example.net' } };

  it('reads zones from their sections; allow weights count negative; unused sections are checked but not used', () => {
    const c = parseDnsblConfig(base as never);
    assert.deepEqual(c.zones.map((z) => [z.name, z.weight]), [['zen', 1], ['wl', -2]]);
    assert.deepEqual(c.probes.get('zen'), { listed: '127.0.0.2', unlisted: '127.0.0.1' });
  });

  it('an allow zone always lowers the score: weight 2 and -2, listed[] weights 2 and -2, all become negative', () => {
    const c = parseDnsblConfig({
      main: { zones: 'wl1, wl2, bl' },
      wl1: { type: 'allow', zone: 'list.dnswl.org', weight: '2' },
      wl2: { type: 'allow', zone: 'list2.dnswl.org', weight: '-2', listed: ['127.0.*.2 med 1', '127.0.*.3 hi -2'] },
      bl: { zone: 'bl.example.net', weight: '-3', listed: ['127.0.0.2 x -1'] },
    } as never);
    const by = new Map(c.zones.map((z) => [z.name, z]));
    assert.equal(by.get('wl1')?.weight, -2);
    assert.equal(by.get('wl2')?.weight, -2);
    assert.deepEqual(by.get('wl2')?.listed.map((p) => p.weight), [-1, -2]);
    assert.equal((classify(by.get('wl2') as Zone, ['127.0.9.3']) as { weight: number }).weight, -2);
    // a block zone's weights are taken as written in absolute value: a typo cannot turn a blocklist into an allowlist
    assert.equal(by.get('bl')?.weight, 3);
    assert.deepEqual(by.get('bl')?.listed.map((p) => p.weight), [1]);
  });

  it('names the file, section and key of a bad value', () => {
    assert.throws(() => parseDnsblConfig({ ...base, zen: { zone: 'zen.spamhaus.org', listed: ['127.0.0.2 sbl heavy'] } } as never), /shield\.dnsbl\.ini \[zen\] listed: .*not a number/);
    assert.throws(() => parseDnsblConfig({ ...base, zen: { zone: 'not a zone!' } } as never), /shield\.dnsbl\.ini \[zen\] zone:/);
    assert.throws(() => parseDnsblConfig({ ...base, main: { zones: 'zen, missing' } } as never), /\[main\] zones: no section \[missing\]/);
    assert.throws(() => parseDnsblConfig({ ...base, off: { zone: 'x.example.net', colour: 'blue' } } as never), /shield\.dnsbl\.ini \[off\] colour/);
    assert.throws(() => parseDnsblConfig({ ...base, main: { zones: 'zen', threshold: 'high' } } as never), /shield\.dnsbl\.ini \[main\] threshold/);
  });
});

describe('dnsbl: patterns and descriptions, edge by edge', () => {
  const p = (t: string) => parsePattern(t, { label: 'x', weight: 1 });
  const c = (t: string) => parseIp(t) as ParsedIp;

  it('a range matches its ends and nothing past them', () => {
    const r = p('127.0.0.4-127.0.0.7');
    assert.deepEqual(['127.0.0.3', '127.0.0.4', '127.0.0.7', '127.0.0.8', '127.0.1.5'].map((x) => r.test(c(x))), [false, true, true, false, false]);
    assert.equal(classify(zone(), ['127.0.0.8']).status, 'error', '127.0.0.8 is in none of the zone\'s ranges');
  });

  it('octet wildcards: four octets, each * or 0..255', () => {
    assert.equal(p('127.0.*.255').test(c('127.0.9.255')), true);
    assert.equal(p('127.0.*.3').test(c('127.1.9.3')), false);
    for (const bad of ['127.0.*', '127.0.*.3.1', '127.0.*.256', '127.0.*.x3', '127.0.*.3x', '127.0.*.1234']) assert.throws(() => p(bad), /is not a code pattern/, bad);
  });

  it('an answer outside 127/8 is an error even when its first byte is 127 in IPv6 form', () => {
    assert.equal(classify(zone({ listed: [] }), ['7f00::2']).status, 'error');
  });

  it('a pattern line has at most three words; extra spaces are fine', () => {
    assert.throws(() => p('127.0.0.2 sbl 1 extra'), /write "<code/);
    assert.equal(p('  127.0.0.2   sbl   2 ').weight, 2);
    assert.equal(p('127.0.0.2').label, 'x');
  });

  it('describes only the listings that weigh: an allow zone that listed the client is not named in a refusal', () => {
    const bl = zone({ name: 'bl', listed: [], weight: 1 });
    const wl = zone({ name: 'wl', type: 'allow', listed: [], weight: -1 });
    const r = (z: Zone): ZoneResult => ({ zone: z, item: '192.0.2.1', identity: 'ip', outcome: classify(z, ['127.0.0.2']) });
    assert.equal(describeListings([r(bl), r(wl)]), 'bl https://check.example.net/?q=192.0.2.1');
    const two = zone({ name: 'zen' });
    assert.equal(describeListings([r(bl), { zone: two, item: '192.0.2.1', identity: 'ip', outcome: classify(two, ['127.0.0.2', '127.0.0.4']) }]), 'bl https://check.example.net/?q=192.0.2.1; zen (sbl,xbl) https://check.example.net/?q=192.0.2.1');
  });

  it('health: one failed test point is not "does not answer"; an unprobed listed point is not judged', () => {
    const points = { listed: '127.0.0.2', unlisted: '127.0.0.1' };
    assert.match(healthVerdict(zone(), points, { listed: null, unlisted: [] }).why, /does not list its test point 127\.0\.0\.2$/);
    assert.equal(healthVerdict(zone(), points, { listed: ['127.0.0.2'], unlisted: null }).ok, true, 'a failed query for the unlisted point alone proves nothing');
    assert.equal(healthVerdict(zone(), points, { listed: undefined, unlisted: null }).ok, true);
    assert.match(healthVerdict(zone(), points, { listed: ['127.0.0.8', '127.0.0.9'], unlisted: [] }).why, /\(answered 127\.0\.0\.8,127\.0\.0\.9\)/);
  });
});
