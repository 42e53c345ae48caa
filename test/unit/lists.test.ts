import assert from 'node:assert/strict';
import { EntryIndex, Lists, checkAddress, checkClient, checkHelo } from '../../plugins/shield/checks/list-match';
import {
  SharedLists,
  decodeEntry,
  listFileEntries,
  normalizeAddress,
  parseEntryValue,
  parseListLine,
  readListFiles,
  type EntryKind,
  type ListEntry,
  type ListName,
} from '../../plugins/shield/core/list-entries';
import { parseIp } from '../../plugins/shield/core/net';
import { MemoryStore } from '../../plugins/shield/core/store';

const NOW = 1_800_000_000_000;

function entry(list: ListName, text: string, kind?: EntryKind, expiresAt: number | null = null): ListEntry {
  const p = parseEntryValue(text, kind);
  return { list, ...p, reason: `r:${text}`, source: 'test', addedAt: null, expiresAt };
}

function lists(...entries: ListEntry[]): Lists {
  return new Lists([new EntryIndex(entries)]);
}

const noDns = { now: NOW, confirm: async () => false };

describe('list entries: parsing', () => {
  it('guesses the kind: IP/CIDR -> ip, user@domain -> sender, a name -> domain', () => {
    assert.deepEqual(parseEntryValue('192.0.2.7'), { kind: 'ip', value: '192.0.2.7/32' });
    assert.deepEqual(parseEntryValue('198.51.100.0/24'), { kind: 'ip', value: '198.51.100.0/24' });
    assert.deepEqual(parseEntryValue('2001:DB8::/32'), { kind: 'ip', value: '2001:db8::/32' });
    assert.deepEqual(parseEntryValue('User@Example.COM.'), { kind: 'sender', value: 'user@example.com' });
    assert.deepEqual(parseEntryValue('Mail.Example.NET.'), { kind: 'domain', value: 'mail.example.net' });
  });

  it('normalises IPv4-mapped IPv6 to IPv4, also for ranges', () => {
    assert.deepEqual(parseEntryValue('::ffff:192.0.2.7'), { kind: 'ip', value: '192.0.2.7/32' });
    assert.deepEqual(parseEntryValue('::ffff:198.51.100.0/120'), { kind: 'ip', value: '198.51.100.0/24' });
  });

  it('refuses CIDRs with host bits set, bad prefixes and legacy IPv4 forms', () => {
    assert.throws(() => parseEntryValue('198.51.100.5/24'), /host bits set; did you mean 198\.51\.100\.0\/24/);
    assert.throws(() => parseEntryValue('198.51.100.0/33'), /prefix length/);
    assert.throws(() => parseEntryValue('2001:db8::1/32'), /host bits/);
    assert.throws(() => parseEntryValue('10.1', 'ip'), /not a valid IP address or CIDR range/);
  });

  it('takes IDN in either form, and refuses wildcards, bad names and IPs as names', () => {
    assert.equal(parseEntryValue('bücher.example').value, 'xn--bcher-kva.example');
    assert.equal(parseEntryValue('xn--bcher-kva.example').value, 'xn--bcher-kva.example');
    assert.throws(() => parseEntryValue('*.example.com'), /already covers its subdomains/);
    assert.throws(() => parseEntryValue('.example.com'), /already covers its subdomains/);
    assert.throws(() => parseEntryValue('bad name!'), /not a host or domain name/);
    assert.throws(() => parseEntryValue('192.0.2.1', 'domain'), /use an ip entry/);
    assert.throws(() => parseEntryValue('a@b@', 'sender'), /not an email address/);
  });

  it('reads sender and rcpt entries as addresses or domains (@domain too)', () => {
    assert.deepEqual(parseEntryValue('example.org', 'sender'), { kind: 'sender', value: 'example.org' });
    assert.deepEqual(parseEntryValue('@Example.org', 'rcpt'), { kind: 'rcpt', value: 'example.org' });
    assert.deepEqual(parseEntryValue('"Old User"@example.com', 'rcpt'), { kind: 'rcpt', value: 'old user@example.com' });
    assert.equal(normalizeAddress('<A@B.example>'), 'a@b.example');
  });

  it('reads list lines: optional kind prefix, reason text, comments; IPv6 is not mistaken for a prefix', () => {
    assert.deepEqual(parseListLine('rcpt:old@example.com retired in 2025'), { kind: 'rcpt', value: 'old@example.com', reason: 'retired in 2025' });
    assert.deepEqual(parseListLine('2001:db8::/32'), { kind: 'ip', value: '2001:db8::/32', reason: '' });
    assert.deepEqual(parseListLine('sender:example.org'), { kind: 'sender', value: 'example.org', reason: '' });
  });

  it('reports a bad line with its number and keeps the others', () => {
    const bad: string[] = [];
    const got = listFileEntries('f', 'block', ['# comment', '192.0.2.1  # host', '', '198.51.100.5/24', 'example.net spam'], (n, m) => bad.push(`${n}: ${m}`));
    assert.deepEqual(
      got.map((e) => [e.kind, e.value, e.reason, e.source]),
      [
        ['ip', '192.0.2.1/32', '', 'f:2'],
        ['domain', 'example.net', 'spam', 'f:5'],
      ],
    );
    assert.equal(bad.length, 1);
    assert.match(bad[0] as string, /^4: .*host bits/);
  });
});

describe('list files', () => {
  it('reads a 200,000-line file (no argument-spreading limits) and names the file of a bad line', () => {
    const lines = Array.from({ length: 200_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    lines.push('10.0.0.1/8');
    const bad: string[] = [];
    const config = { get: (name: string) => (name === 'big.block' ? lines : ['partner.example']) };
    const got = readListFiles(config, { block_file: 'big.block', allow_file: 'small.allow' }, (f, n, m) => bad.push(`${f}:${n}: ${m}`));
    assert.equal(got.length, 200_001);
    assert.equal(got[200_000]?.list, 'allow');
    assert.deepEqual(bad, ['big.block:200001: "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?']);
  });
});

describe('list matching', () => {
  it('longest prefix wins between block and allow; allow wins a tie', async () => {
    const l = lists(entry('block', '198.51.100.0/24'), entry('allow', '198.51.100.7'), entry('allow', '203.0.113.0/24'), entry('block', '203.0.113.0/24'));
    assert.equal((await checkClient({ ip: '198.51.100.8', ptrNames: [] }, l, noDns)).verdict, 'block');
    assert.equal((await checkClient({ ip: '198.51.100.7', ptrNames: [] }, l, noDns)).verdict, 'allow');
    assert.equal((await checkClient({ ip: '203.0.113.9', ptrNames: [] }, l, noDns)).verdict, 'allow');
    assert.equal((await checkClient({ ip: '198.51.101.1', ptrNames: [] }, l, noDns)).verdict, 'none');
  });

  it('a block more specific than an allow wins: a /32 block inside an allowed /24, a /25 inside an allowed /16', async () => {
    const l = lists(entry('allow', '198.51.100.0/24'), entry('block', '198.51.100.66'), entry('allow', '203.0.0.0/16'), entry('block', '203.0.113.128/25'), entry('allow', '2001:db8::/32'), entry('block', '2001:db8:bad::/48'));
    const blocked = await checkClient({ ip: '198.51.100.66', ptrNames: [] }, l, noDns);
    assert.equal(blocked.verdict, 'block');
    assert.equal(blocked.match?.entry.value, '198.51.100.66/32');
    assert.equal((await checkClient({ ip: '198.51.100.67', ptrNames: [] }, l, noDns)).verdict, 'allow', 'the rest of the /24 stays allowed');
    assert.equal((await checkClient({ ip: '203.0.113.200', ptrNames: [] }, l, noDns)).verdict, 'block');
    assert.equal((await checkClient({ ip: '203.0.113.100', ptrNames: [] }, l, noDns)).verdict, 'allow');
    assert.equal((await checkClient({ ip: '2001:db8:bad::25', ptrNames: [] }, l, noDns)).verdict, 'block');
    assert.equal((await checkClient({ ip: '2001:db8:900d::25', ptrNames: [] }, l, noDns)).verdict, 'allow');
  });

  it('matches CIDR edges exactly (first and last address, one outside)', async () => {
    const l = lists(entry('block', '198.51.100.64/26'));
    for (const [ip, v] of [
      ['198.51.100.64', 'block'],
      ['198.51.100.127', 'block'],
      ['198.51.100.63', 'none'],
      ['198.51.100.128', 'none'],
    ] as const) {
      assert.equal((await checkClient({ ip, ptrNames: [] }, l, noDns)).verdict, v, ip);
    }
  });

  it('IPv6 ranges, and IPv4-mapped clients match IPv4 entries', async () => {
    const l = lists(entry('block', '2001:db8:bad::/48'), entry('block', '192.0.2.0/24'), entry('block', '0.0.0.0/0', 'ip'));
    assert.equal((await checkClient({ ip: '2001:db8:bad:1::5', ptrNames: [] }, l, noDns)).match?.entry.value, '2001:db8:bad::/48');
    assert.equal((await checkClient({ ip: '2001:db8:bae::1', ptrNames: [] }, l, noDns)).verdict, 'none');
    assert.equal((await checkClient({ ip: '::ffff:192.0.2.9', ptrNames: [] }, l, noDns)).match?.entry.value, '192.0.2.0/24');
    // 0.0.0.0/0 covers every IPv4 client, none of the IPv6 ones
    assert.equal((await checkClient({ ip: '203.0.113.1', ptrNames: [] }, l, noDns)).match?.entry.value, '0.0.0.0/0');
  });

  it('an expired entry stops matching and a less specific live one takes over', async () => {
    const l = lists(entry('block', '198.51.100.0/24'), entry('allow', '198.51.100.7', 'ip', NOW - 1), entry('block', '203.0.113.5', 'ip', NOW + 1000));
    assert.equal((await checkClient({ ip: '198.51.100.7', ptrNames: [] }, l, noDns)).verdict, 'block');
    assert.equal((await checkClient({ ip: '203.0.113.5', ptrNames: [] }, l, noDns)).verdict, 'block');
    assert.equal((await checkClient({ ip: '203.0.113.5', ptrNames: [] }, l, { ...noDns, now: NOW + 1000 })).verdict, 'none');
  });

  it('domain entries cover subdomains, not look-alikes; case and trailing dots do not matter', () => {
    const l = lists(entry('block', 'spam.example'));
    assert.equal(checkHelo('SPAM.example.', l, NOW).verdict, 'block');
    assert.equal(checkHelo('a.b.spam.example', l, NOW).verdict, 'block');
    assert.equal(checkHelo('notspam.example', l, NOW).verdict, 'none');
    assert.equal(checkHelo('spam.example.org', l, NOW).verdict, 'none');
    assert.equal(checkHelo('[192.0.2.1]', l, NOW).verdict, 'none');
  });

  it('IP entries decide before names: an IP allow beats a name block, an IP block beats a name allow', async () => {
    const l = lists(entry('allow', '198.51.100.7'), entry('block', 'bad.example'), entry('block', '203.0.113.9'), entry('allow', 'good.example'));
    const yes = { now: NOW, confirm: async () => true };
    assert.equal((await checkClient({ ip: '198.51.100.7', ptrNames: ['x.bad.example'] }, l, yes)).verdict, 'allow');
    assert.equal((await checkClient({ ip: '203.0.113.9', ptrNames: ['mx.good.example'] }, l, yes)).verdict, 'block');
  });

  it('an rDNS allow counts only when forward-confirmed; a block on the name stands otherwise', async () => {
    const l = lists(entry('allow', 'partner.example'), entry('block', 'example', 'domain'));
    const asked: string[] = [];
    const confirm = async (name: string, ip: ReturnType<typeof parseIp>): Promise<boolean> => {
      asked.push(`${name} ${ip?.text}`);
      return name === 'mx1.partner.example';
    };
    const ok = await checkClient({ ip: '192.0.2.1', ptrNames: ['MX1.Partner.Example.'] }, l, { now: NOW, confirm });
    assert.equal(ok.verdict, 'allow');
    assert.equal(ok.by, 'rdns');
    assert.deepEqual(asked, ['mx1.partner.example 192.0.2.1']);
    const forged = await checkClient({ ip: '192.0.2.2', ptrNames: ['mx2.partner.example'] }, l, { now: NOW, confirm });
    assert.equal(forged.verdict, 'block');
    assert.equal(forged.unconfirmed, false);
  });

  it('a DNS fault while confirming leaves an unconfirmed block (to defer), never an allow', async () => {
    const l = lists(entry('allow', 'partner.example'), entry('block', 'example', 'domain'));
    const v = await checkClient({ ip: '192.0.2.1', ptrNames: ['mx.partner.example'] }, l, {
      now: NOW,
      confirm: async () => {
        throw new Error('timeout');
      },
    });
    assert.equal(v.verdict, 'block');
    assert.equal(v.unconfirmed, true);
    assert.deepEqual(v.dnsErrors, ['mx.partner.example']);
  });

  it('a more specific name block beats a broader name allow without asking DNS', async () => {
    const l = lists(entry('allow', 'partner.example'), entry('block', 'dyn.partner.example'));
    let asked = 0;
    const v = await checkClient({ ip: '192.0.2.1', ptrNames: ['h1.dyn.partner.example'] }, l, {
      now: NOW,
      confirm: async () => {
        asked++;
        return true;
      },
    });
    assert.equal(v.verdict, 'block');
    assert.equal(asked, 0);
  });

  it('addresses: exact address beats its domain; sender allow carves an exception out of a domain block', () => {
    const l = lists(entry('block', 'bulk.example', 'sender'), entry('allow', 'ceo@bulk.example', 'sender'), entry('block', 'old@example.com', 'rcpt'));
    assert.equal(checkAddress('sender', 'x@mail.bulk.example', l, NOW).verdict, 'block');
    assert.equal(checkAddress('sender', 'CEO@Bulk.Example', l, NOW).verdict, 'allow');
    assert.equal(checkAddress('sender', 'old@example.com', l, NOW).verdict, 'none');
    assert.equal(checkAddress('rcpt', 'Old@example.com.', l, NOW).verdict, 'block');
    assert.equal(checkAddress('rcpt', 'new@example.com', l, NOW).verdict, 'none');
  });

  it('addresses: a blocked address or subdomain under an allowed domain is blocked (sender and rcpt)', () => {
    for (const kind of ['sender', 'rcpt'] as const) {
      const l = lists(entry('allow', 'example.com', kind), entry('block', 'spammer@example.com', kind), entry('block', 'bulk.example.com', kind));
      const v = checkAddress(kind, 'Spammer@Example.com', l, NOW);
      assert.equal(v.verdict, 'block', kind);
      assert.equal(v.match?.entry.value, 'spammer@example.com', kind);
      assert.equal(checkAddress(kind, 'x@mail.bulk.example.com', l, NOW).verdict, 'block', `${kind}: a more specific domain block`);
      assert.equal(checkAddress(kind, 'friend@example.com', l, NOW).verdict, 'allow', kind);
      assert.equal(checkAddress(kind, 'friend@other.example.com', l, NOW).verdict, 'allow', `${kind}: the allow covers subdomains`);
    }
  });

  it('combines several indexes by specificity (a file block and a store allow)', async () => {
    const l = new Lists([new EntryIndex([entry('block', '198.51.100.0/24')]), new EntryIndex([entry('allow', '198.51.100.7')])]);
    assert.equal((await checkClient({ ip: '198.51.100.7', ptrNames: [] }, l, noDns)).verdict, 'allow');
  });
});

describe('list matching: several rDNS names, several indexes', () => {
  const yes = { now: NOW, confirm: async () => true };

  it('the most specific block among all the PTR names decides which allows can win, whatever their order', async () => {
    const l = lists(entry('block', 'a.b.example'), entry('block', 'example', 'domain'), entry('allow', 'partner.example'));
    for (const ptrNames of [['h.a.b.example', 'mx.partner.example'], ['mx.partner.example', 'h.a.b.example']]) {
      const v = await checkClient({ ip: '192.0.2.1', ptrNames }, l, yes);
      assert.equal(v.verdict, 'block', ptrNames.join(' '));
      assert.equal(v.match?.entry.value, 'a.b.example');
    }
  });

  it('a confirmed allow as specific as the block wins the tie; of several confirmed allows the most specific is named', async () => {
    const tie = lists(entry('block', 'bad.example'), entry('allow', 'good.example'));
    assert.equal((await checkClient({ ip: '192.0.2.1', ptrNames: ['h.bad.example', 'mx.good.example'] }, tie, yes)).verdict, 'allow');
    const two = lists(entry('allow', 'partner.example'), entry('allow', 'mx.partner.example'));
    const v = await checkClient({ ip: '192.0.2.1', ptrNames: ['out.partner.example', 'a.mx.partner.example'] }, two, yes);
    assert.equal(v.verdict, 'allow');
    assert.equal(v.subject, 'a.mx.partner.example');
    assert.equal(v.match?.entry.value, 'mx.partner.example');
  });

  it('PTR and HELO names with underscores are matched; malformed names are skipped, not fatal; at most maxNames (5) names', async () => {
    const l = lists(entry('block', 'bad.example'));
    assert.equal((await checkClient({ ip: '192.0.2.1', ptrNames: ['mail_1.bad.example'] }, l, noDns)).verdict, 'block');
    assert.equal(checkHelo('x_y.bad.example', l, NOW).verdict, 'block');
    assert.equal((await checkClient({ ip: '192.0.2.1', ptrNames: ['not a name!', '', 'h.bad.example'] }, l, noDns)).verdict, 'block');
    const many = ['a', 'b', 'c', 'd', 'e'].map((x) => `${x}.clean.example`);
    assert.equal((await checkClient({ ip: '192.0.2.1', ptrNames: [...many, 'h.bad.example'] }, l, noDns)).verdict, 'none', 'the sixth name is not looked at');
    assert.equal((await checkClient({ ip: '192.0.2.1', ptrNames: [...many, 'h.bad.example'] }, l, { ...noDns, maxNames: 6 })).verdict, 'block');
  });

  it('across indexes the most specific entry wins whichever index holds it', () => {
    const a = new EntryIndex([entry('block', '198.51.100.0/24')]);
    const b = new EntryIndex([entry('block', '198.51.100.7')]);
    const c = new EntryIndex([entry('allow', '198.51.100.0/28')]);
    const ip = parseIp('198.51.100.7')!;
    for (const order of [[a, b, c], [c, b, a], [b, a, c]]) {
      assert.equal(new Lists(order).ip('block', ip, NOW)?.entry.value, '198.51.100.7/32');
      assert.equal(new Lists(order).ip('allow', ip, NOW)?.entry.value, '198.51.100.0/28');
    }
  });

  it('on a tie the first index (the files) names the entry, and the first PTR name the subject', async () => {
    const file = entry('block', '198.51.100.7');
    const store = { ...entry('block', '198.51.100.7'), source: 'cli:ops', reason: 'from the store' };
    const l = new Lists([new EntryIndex([file]), new EntryIndex([store])]);
    assert.equal(l.ip('block', parseIp('198.51.100.7')!, NOW)?.entry.source, 'test');
    const names = lists(entry('block', 'bad.example'), entry('block', 'worse.example'));
    const v = await checkClient({ ip: '192.0.2.1', ptrNames: ['h.bad.example', 'h.worse.example'] }, names, noDns);
    assert.equal(v.subject, 'h.bad.example');
  });

  it('a large index is built in chunks with the same result', async () => {
    const entries = Array.from({ length: 7 }, (_, i) => entry('block', `198.51.100.${i}`));
    const ix = await EntryIndex.build(entries, 2);
    assert.equal(ix.size, 7);
    assert.equal(new Lists([ix]).ip('block', parseIp('198.51.100.6')!, NOW)?.entry.value, '198.51.100.6/32');
  });

  it('an index counts its entries of every list and kind', () => {
    const ix = new EntryIndex([entry('block', '198.51.100.0/24'), entry('allow', '198.51.100.7'), entry('block', 'bad.example'), entry('allow', 'ok.example'), entry('block', 'x@bad.example', 'sender'), entry('allow', 'y@ok.example', 'rcpt')]);
    assert.equal(ix.size, 6);
  });
});

describe('shared lists in the store', () => {
  let now = NOW;
  const store = new MemoryStore(() => now, 0);
  const shared = new SharedLists(store, () => now);

  it('adds entries with reason, source and expiry; bumps the version; removes', async () => {
    const v0 = (await shared.snapshot()).version;
    let changes = 0;
    shared.onChange(() => changes++);
    await shared.add({ list: 'block', kind: 'ip', value: '198.51.100.0/24', ttlSec: 60, reason: 'snowshoe\r\nX-Injected: 1', source: 'cli:test' });
    await shared.add({ list: 'allow', kind: 'domain', value: 'partner.example', ttlSec: null, reason: '', source: 'cli:test' });
    const v2 = (await shared.snapshot()).version;
    assert.ok(v2 >= v0 + 2, 'each change moves the version');
    assert.equal(changes, 2);
    const all = await shared.entries();
    const b = all.find((e) => e.list === 'block');
    assert.equal(b?.value, '198.51.100.0/24');
    assert.equal(b?.reason, 'snowshoe X-Injected: 1', 'reasons are one printable line');
    assert.equal(b?.source, 'cli:test');
    assert.equal(b?.addedAt, NOW);
    assert.equal(b?.expiresAt, NOW + 60000);
    assert.equal(all.find((e) => e.list === 'allow')?.expiresAt, null);
    assert.equal(await shared.remove('allow', 'domain', 'partner.example'), true);
    assert.equal(await shared.remove('allow', 'domain', 'partner.example'), false);
  });

  it('blockTemporarily adds an expiring ip block that lapses by itself', async () => {
    await shared.blockTemporarily('::ffff:203.0.113.9', 600, 'AUTH brute force', 'shield.auth');
    const e = (await shared.entries()).find((x) => x.value === '203.0.113.9/32');
    assert.equal(e?.list, 'block');
    assert.equal(e?.source, 'shield.auth');
    now += 600_001;
    assert.equal((await shared.entries()).find((x) => x.value === '203.0.113.9/32'), undefined);
    await assert.rejects(shared.blockTemporarily('203.0.113.9', 0, 'x', 'y'), /positive ttl/);
    await assert.rejects(shared.blockTemporarily('not-an-ip', 60, 'x', 'y'), /not an IP/);
  });

  it('ignores store members it cannot read', () => {
    assert.equal(decodeEntry('block|bogus|x', '{}', null), null);
    assert.equal(decodeEntry('nolist', '{}', null), null);
    assert.equal(decodeEntry('block|ip|192.0.2.1/32', 'not json', null)?.source, 'unknown');
  });
});
