/** shield.dnsbl: the texts a listed client and the operator read (refusal, evidence), and zone config details. */
import assert from 'node:assert/strict';
import { classify, describeListings, domainItem, healthVerdict, listedZones, listingText, parsePattern, score, type Zone, type ZoneResult } from '../../plugins/shield/checks/dnsbl';
import { parseIp, type ParsedIp } from '../../plugins/shield/core/net';
import { parseDnsblConfig } from '../../plugins/shield/checks/dnsbl-config';

function zone(over: Partial<Zone> = {}): Zone {
  return {
    name: 'zen',
    type: 'ip',
    zone: 'zen.example.org',
    key: '',
    ipv4: true,
    ipv6: false,
    listed: [parsePattern('127.0.0.2 sbl 1', { label: 'x', weight: 1 }), parsePattern('127.0.0.4 xbl 1', { label: 'x', weight: 1 })],
    errors: [],
    weight: 1,
    tagOnly: false,
    lookupUrl: '',
    identities: ['helo', 'rdns', 'mail_from'],
    registeredDomain: true,
    ...over,
  };
}

const res = (z: Zone, item: string, identity: ZoneResult['identity'], codes: string[]): ZoneResult => ({ zone: z, item, identity, outcome: classify(z, codes) });

describe('dnsbl texts: the refusal names who is listed where', () => {
  const zen = zone({ lookupUrl: 'https://check.example.org/listed/?searchterm={item}' });
  const spamcop = zone({ name: 'spamcop', zone: 'bl.spamcop.example', listed: [] });
  const dbl = zone({ name: 'dbl', type: 'domain', zone: 'dbl.example.org', listed: [], lookupUrl: 'https://check.example.org/d/{item}' });

  it('the IP itself, with every zone that listed it, labels and lookup links', () => {
    const text = listingText([res(zen, '192.0.2.1', 'ip', ['127.0.0.2', '127.0.0.4']), res(spamcop, '192.0.2.1', 'ip', ['127.0.0.2'])], '192.0.2.1');
    assert.equal(text, '192.0.2.1 is listed by zen (sbl,xbl) https://check.example.org/listed/?searchterm=192.0.2.1; spamcop');
  });

  it('the client names: HELO, host name, sender domain, each with its own zones', () => {
    const text = listingText(
      [
        res(zen, '192.0.2.1', 'ip', ['127.0.0.2']),
        res(dbl, 'helo.example', 'helo', ['127.0.1.2']),
        res(dbl, 'ptr.example', 'rdns', ['127.0.1.2']),
        res(dbl, 'sender.example', 'mail_from', ['127.0.1.2']),
        res(spamcop, 'helo.example', 'helo', ['127.0.0.2']),
      ],
      '192.0.2.1',
    );
    assert.equal(
      text,
      '192.0.2.1 is listed by zen (sbl) https://check.example.org/listed/?searchterm=192.0.2.1; ' +
        'the HELO name helo.example is listed by dbl https://check.example.org/d/helo.example; spamcop; ' +
        'the host name ptr.example is listed by dbl https://check.example.org/d/ptr.example; ' +
        'the sender domain sender.example is listed by dbl https://check.example.org/d/sender.example',
    );
  });

  it('only listings that weigh: clean zones, errors and allow zones are left out', () => {
    const wl = zone({ name: 'wl', type: 'allow', listed: [], weight: -1 });
    const zero = zone({ name: 'zero', listed: [], weight: 0 });
    const text = listingText(
      [res(zen, '192.0.2.1', 'ip', []), res(spamcop, '192.0.2.1', 'ip', ['127.255.255.254']), res(wl, '192.0.2.1', 'ip', ['127.0.0.2']), res(zero, '192.0.2.1', 'ip', ['127.0.0.2']), res(dbl, 'x.example', 'helo', ['127.0.1.2'])],
      '192.0.2.1',
    );
    assert.equal(text, 'the HELO name x.example is listed by dbl https://check.example.org/d/x.example');
    assert.equal(listingText([], '192.0.2.1'), '');
  });

  it('the lookup link carries the item URL-encoded, and nothing of the query key', () => {
    const dq = zone({ name: 'zen', zone: 'zen.dq.example.net', key: 'SECRETKEY', lookupUrl: 'https://check.example.org/?q={item}&src=mx' });
    assert.equal(describeListings([res(dq, '2001:db8::1', 'ip', ['127.0.0.2'])]), 'zen (sbl) https://check.example.org/?q=2001%3Adb8%3A%3A1&src=mx');
    assert.equal(describeListings([res(zone({ listed: [] }), '192.0.2.1', 'ip', ['127.0.0.9'])]), 'zen', 'no labels, no link: the name alone');
  });
});

describe('dnsbl texts: the evidence names the zones that listed', () => {
  it('counting zones and tag-only zones, with their labels; not clean or broken zones', () => {
    const zen = zone();
    const uce = zone({ name: 'uce', listed: [], tagOnly: true });
    const s = score([res(zen, '192.0.2.1', 'ip', ['127.0.0.2', '127.0.0.4']), res(uce, '192.0.2.1', 'ip', ['127.0.0.2']), res(zone({ name: 'clean' }), '192.0.2.1', 'ip', []), res(zone({ name: 'broken' }), '192.0.2.1', 'ip', ['10.0.0.1'])]);
    assert.deepEqual(listedZones(s), ['zen(sbl,xbl)', 'uce']);
    assert.equal(s.score, 2);
    assert.deepEqual(s.errors.map((e) => e.zone.name), ['broken']);
  });

  it('a listing matched by one label twice names it once', () => {
    const z = zone({ listed: [parsePattern('127.0.0.2 pbl 0.5', { label: 'x', weight: 1 }), parsePattern('127.0.0.3 pbl 0.5', { label: 'x', weight: 1 })] });
    const r = res(z, '192.0.2.1', 'ip', ['127.0.0.2', '127.0.0.3']);
    assert.deepEqual(r.outcome, { status: 'listed', codes: ['127.0.0.2', '127.0.0.3'], labels: ['pbl'], weight: 1 });
  });
});

describe('dnsbl config: zone details', () => {
  it('a zone section gives every field, with the defaults of an ip zone', () => {
    const c = parseDnsblConfig({ main: { zones: 'zen' }, zen: { zone: 'ZEN.Example.ORG.' } });
    assert.deepEqual(c.main, {
      zones: ['zen'],
      threshold: 1,
      enforce_at: 'rcpt',
      exempt_private: true,
      cache_min_ttl: 60,
      cache_max_ttl: 3600,
      health_interval: 300,
      health_failures: 3,
      error_log_interval: 300,
      max_names: 10,
      cache_names: { limit: 200, windowSec: 3600 },
      exempt_rcpts: undefined,
      header: undefined,
    });
    const z = c.zones[0] as Zone;
    assert.deepEqual({ ...z, listed: z.listed.length, errors: z.errors.length }, {
      name: 'zen',
      type: 'ip',
      zone: 'zen.example.org',
      key: '',
      ipv4: true,
      ipv6: false,
      listed: 0,
      errors: 0,
      weight: 1,
      tagOnly: false,
      lookupUrl: '',
      identities: ['helo', 'rdns', 'mail_from'],
      registeredDomain: true,
    });
    assert.ok(Object.isFrozen(z));
    assert.deepEqual(c.probes.get('zen'), { listed: '127.0.0.2', unlisted: '127.0.0.1' });
  });

  it('every field as written', () => {
    const c = parseDnsblConfig({
      main: { zones: 'dbl' },
      dbl: {
        type: 'domain',
        zone: 'dbl.example.org',
        key: 'ABC123',
        ipv4: 'false',
        ipv6: 'true',
        listed: ['127.0.1.2 spam 2'],
        errors: ['127.0.1.255'],
        tag_only: 'true',
        lookup_url: 'https://x.example/{item}',
        check: 'helo, mail_from',
        registered_domain: 'false',
        test_listed: 'dbltest.com',
        test_unlisted: '',
      },
    });
    const z = c.zones[0] as Zone;
    assert.deepEqual([z.type, z.key, z.ipv4, z.ipv6, z.tagOnly, z.lookupUrl, z.identities, z.registeredDomain], ['domain', 'ABC123', false, true, true, 'https://x.example/{item}', ['helo', 'mail_from'], false]);
    assert.deepEqual(z.listed.map((p) => [p.match, p.label, p.weight]), [['127.0.1.2', 'spam', 2]]);
    assert.deepEqual(z.errors.map((p) => [p.match, p.label, p.weight]), [['127.0.1.255', 'error', 0]]);
    assert.equal(classify(z, ['127.0.1.255']).status, 'error');
    assert.deepEqual(c.probes.get('dbl'), { listed: 'dbltest.com', unlisted: '' });
  });

  it('check takes each of helo, rdns and mail_from', () => {
    const c = parseDnsblConfig({ main: { zones: 'a, b' }, a: { type: 'domain', zone: 'a.example.org', check: 'rdns' }, b: { type: 'domain', zone: 'b.example.org', check: 'mail_from, helo, rdns' } });
    assert.deepEqual(c.zones.map((z) => z.identities), [['rdns'], ['mail_from', 'helo', 'rdns']]);
  });

  it('a listed[] line without a label takes the section name, with weight 1', () => {
    const c = parseDnsblConfig({ main: { zones: 'sc' }, sc: { zone: 'bl.example.org', listed: ['127.0.0.2'] } });
    assert.deepEqual(c.zones[0]?.listed.map((p) => [p.label, p.weight]), [['sc', 1]]);
  });

  it('domain zones probe "test" and "invalid" by default', () => {
    const c = parseDnsblConfig({ main: { zones: 'dbl' }, dbl: { type: 'domain', zone: 'dbl.example.org' } });
    assert.deepEqual(c.probes.get('dbl'), { listed: 'test', unlisted: 'invalid' });
    const ip = parseDnsblConfig({ main: { zones: 'zen' }, zen: { zone: 'zen.example.org', test_listed: '127.0.0.10', test_unlisted: 'auto' } });
    assert.deepEqual(ip.probes.get('zen'), { listed: '127.0.0.10', unlisted: '127.0.0.1' });
  });

  it('refuses what would silently misbehave, naming file, section and key', () => {
    assert.throws(() => parseDnsblConfig({ main: { zones: 'z' }, z: { zone: 'z.example.org', key: 'bad key!' } }), /shield\.dnsbl\.ini \[z\] key/);
    assert.throws(() => parseDnsblConfig({ main: { zones: 'z' }, z: { zone: 'z.example.org', check: 'helo, body' } }), /"body" is not one of helo, rdns, mail_from/);
    assert.throws(() => parseDnsblConfig({ main: { zones: 'z' }, z: { zone: 'z.example.org', errors: ['127.0.0.300'] } }), /shield\.dnsbl\.ini \[z\] errors: /);
    assert.throws(() => parseDnsblConfig({ main: { zones: 'z' }, z: { zone: '' } }), { message: 'shield.dnsbl.ini [z] zone: must not be empty' });
    assert.throws(() => parseDnsblConfig({ main: { zones: 'z' }, z: { zone: 'z.example.org', type: 'url' } }), /not one of ip, domain, allow/);
    assert.throws(() => parseDnsblConfig({ main: { cache_max_ttl: '0s' } }), /cache_max_ttl/);
    assert.throws(() => parseDnsblConfig({ main: { error_log_interval: '0s' } }), /error_log_interval/);
    assert.equal(parseDnsblConfig({ main: { cache_min_ttl: '0s', health_interval: '0s' } }).main.health_interval, 0);
  });

  it('a zone section without a zone, or with an underscore in it', () => {
    assert.throws(() => parseDnsblConfig({ main: { zones: 'z' }, z: {} }), { message: 'shield.dnsbl.ini [z] zone: required, and missing' });
    assert.equal(parseDnsblConfig({ main: { zones: 'z' }, z: { zone: 'Bl_1.Example.org' } }).zones[0]?.zone, 'bl_1.example.org');
  });

  it('no file: no zones; a retired key warns', () => {
    assert.deepEqual(parseDnsblConfig(null), { main: parseDnsblConfig({}).main, zones: [], probes: new Map() });
    const warnings: string[] = [];
    parseDnsblConfig({ main: { header: 'X-DNSBL' } }, (m) => warnings.push(m));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /^shield\.dnsbl\.ini \[main\] header: ignored; retired: the suite adds one X-Shield header/);
  });
});

describe('dnsbl: code patterns, strictly', () => {
  const p = (t: string) => parsePattern(t, { label: 'x', weight: 1 });
  const code = (t: string) => parseIp(t) as ParsedIp;

  it('codes are IPv4 addresses', () => {
    assert.throws(() => p('2001:db8::2'), { message: '"2001:db8::2" is not an IPv4 return code' });
    assert.throws(() => p('127.0.0.x'), { message: '"127.0.0.x" is not an IPv4 return code' });
    assert.throws(() => p('127.0.0.2-::2'), { message: '"::2" is not an IPv4 return code' });
  });

  it('a bitmask is exactly "bitmask:N" with N in 1..255', () => {
    assert.equal(p('bitmask:1').test(code('127.0.0.3')), true);
    assert.equal(p('bitmask:1').test(code('127.0.0.2')), false);
    assert.equal(p('bitmask:255').test(code('127.0.0.128')), true);
    assert.throws(() => p('bitmask:256'), /a bitmask is 1\.\.255/);
    assert.throws(() => p('xbitmask:8'), /is not an IPv4 return code/);
    assert.throws(() => p('bitmask:8x'), /is not an IPv4 return code/);
  });

  it('ranges: one code is a range too; the order counts across octets', () => {
    const one = p('127.0.0.2-127.0.0.2');
    assert.deepEqual([one.test(code('127.0.0.2')), one.test(code('127.0.0.3'))], [true, false]);
    const wide = p('127.0.0.200-127.1.0.5');
    assert.deepEqual(['127.0.0.199', '127.0.0.200', '127.0.255.255', '127.1.0.5', '127.1.0.6', '127.0.1.0'].map((c) => wide.test(code(c))), [false, true, true, true, false, true]);
    assert.equal(p('127.0.0.2-127.0.0.11').test(code('128.0.0.5')), false, 'another first octet is another code');
    assert.equal(p('127.0.0.5').test(code('128.0.0.5')), false);
  });

  it('an octet of a wildcard pattern is * or a plain decimal number', () => {
    for (const bad of ['127.0.*.+3', '127.0.*.0x3', '127.0.*.3e0', '127.0.*.-3', '127.0.*.']) assert.throws(() => p(bad), /is not a code pattern/, bad);
  });

  it('an answer matching none of the zone codes says which codes came', () => {
    assert.deepEqual(classify(zone(), ['127.0.0.8', '127.0.0.9']), { status: 'error', why: "answer 127.0.0.8,127.0.0.9 matches none of the zone's codes" });
  });
});

describe('dnsbl: the names domain zones are asked about', () => {
  it('underscores are fine in names; single labels are not asked', () => {
    const full = zone({ type: 'domain', registeredDomain: false });
    assert.equal(domainItem(full, '_spf.Example.com'), '_spf.example.com');
    assert.equal(domainItem(full, 'localhost'), null);
    assert.equal(domainItem(full, ''), null);
    assert.equal(domainItem(full, null), null);
    assert.equal(domainItem(zone({ type: 'domain' }), 'mail_1.example.co.uk'), 'example.co.uk');
  });

  it('a listing with no weight is left out of a description', () => {
    const zero = zone({ name: 'zero', listed: [], weight: 0 });
    assert.equal(describeListings([{ zone: zero, item: '192.0.2.1', identity: 'ip', outcome: classify(zero, ['127.0.0.2']) }]), '');
  });
});

describe('dnsbl: zone health verdicts, exactly', () => {
  const points = { listed: '127.0.0.2', unlisted: '127.0.0.1' };
  it('does not answer', () => {
    assert.deepEqual(healthVerdict(zone(), points, { listed: null, unlisted: null }), { ok: false, why: 'it does not answer (both test points timed out or failed)' });
  });
  it('lists everything', () => {
    assert.deepEqual(healthVerdict(zone(), points, { listed: ['127.0.0.2'], unlisted: ['127.0.0.2', '127.0.0.4'] }), {
      ok: false,
      why: 'it lists the test point 127.0.0.1, which no zone lists (it lists everything, or refuses our queries: 127.0.0.2,127.0.0.4)',
    });
  });
  it('does not list its test point', () => {
    assert.deepEqual(healthVerdict(zone(), points, { listed: [], unlisted: [] }), { ok: false, why: 'it does not list its test point 127.0.0.2' });
    assert.deepEqual(healthVerdict(zone(), points, { listed: null, unlisted: undefined }), { ok: false, why: 'it does not list its test point 127.0.0.2' });
  });
});
