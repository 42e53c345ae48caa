/**
 * Config that cannot lie: a comment after a value is an error (never more list items), one
 * vocabulary for "disabled", error texts that say what is accepted, one loader per file.
 */
import assert from 'node:assert/strict';
import { ConfigRegistry, didYouMean, f, lintIni, parseConfig, parseLines, parseRate } from '../../plugins/shield/core/config';
import { ConfigError } from '../../plugins/shield/core/errors';
import { cidrItem } from '../../plugins/shield/core/net';
import { parseDnsblConfig } from '../../plugins/shield/checks/dnsbl-config';
import { LIMIT_SCHEMA } from '../../plugins/shield/checks/limit-config';
import { RELAY_SCHEMA } from '../../plugins/shield/checks/relay-config';
import { parseEntryText, parseEntryValue, parseListLine, reasonLooksLikeEntry } from '../../plugins/shield/core/list-entries';

const SCHEMA = {
  main: {
    nets: f.list([], 'networks', cidrItem),
    patterns: f.list([], 'regexes', undefined, { whole: true }),
    count: f.int(3, 'a count', { min: 0, off: true }),
    wait: f.duration(2, 'a wait', { off: true }),
    name: f.str('x', 'a name'),
    text: f.str('', 'free text', { free: true }),
    needed: f.str('', 'a required value', { required: true }),
  },
} as const;

function refuses(raw: Record<string, unknown>, re: RegExp): void {
  assert.throws(
    () => parseConfig('t.ini', SCHEMA, { main: { needed: 'y', ...raw } } as never),
    (err: unknown) => err instanceof ConfigError && re.test(err.message),
    `${JSON.stringify(raw)} should fail with ${String(re)}`,
  );
}

describe('config: values that cannot be misread', () => {
  it('a ";" or "#" after a list value is an error naming file, section and key, never another item', () => {
    refuses({ nets: '127.0.0.7 ; 127.0.0.80/28' }, /^t\.ini \[main\] nets: "127\.0\.0\.7 ; 127\.0\.0\.80\/28": a value may not contain ";" or "#"/);
    refuses({ nets: '127.0.0.7 ; office lan' }, /^t\.ini \[main\] nets: .*may not contain/);
    refuses({ nets: '127.0.0.7 # office lan' }, /^t\.ini \[main\] nets: .*may not contain/);
    refuses({ nets: ['192.0.2.0/24', '198.51.100.0/24;'] }, /^t\.ini \[main\] nets: "198\.51\.100\.0\/24;"/);
    refuses({ nets: '127.0.0.7;127.0.0.8' }, /may not contain/);
  });

  it('the same for single values: a duration, a count, a file name', () => {
    refuses({ wait: '30s ; half a minute' }, /^t\.ini \[main\] wait: .*may not contain/);
    refuses({ count: '5 # five' }, /^t\.ini \[main\] count: .*may not contain/);
    refuses({ name: 'shield.relay.networks ; ours' }, /^t\.ini \[main\] name: .*may not contain/);
  });

  it('comma and white space separate list items; whole-line lists and free text keep ";" and "#"', () => {
    const c = parseConfig('t.ini', SCHEMA, { main: { needed: 'y', nets: '192.0.2.0/24,198.51.100.0/24  203.0.113.0/24', patterns: ['^a#b;c$'], text: 'see https://example.com/#x; thanks' } });
    assert.deepEqual(c.main.nets, ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24']);
    assert.deepEqual(c.main.patterns, ['^a#b;c$']);
    assert.equal(c.main.text, 'see https://example.com/#x; thanks');
  });

  it('the relay networks of the issue: "127.0.0.7 ; 127.0.0.80/28" is refused, not two networks', () => {
    assert.throws(() => parseConfig('shield.relay.ini', RELAY_SCHEMA, { main: { networks: '127.0.0.7 ; 127.0.0.80/28' } }), /^ConfigError: |shield\.relay\.ini \[main\] networks: .*may not contain/);
  });

  it('"off" is the one word for disabled: counts, limits, intervals', () => {
    const c = parseConfig('t.ini', SCHEMA, { main: { needed: 'y', count: 'off', wait: 'OFF' } });
    assert.equal(c.main.count, 0);
    assert.equal(c.main.wait, 0);
    const l = parseConfig('shield.limit.ini', LIMIT_SCHEMA, { concurrency: { conc_ip: 'off' }, session: { max_rcpts: 'off' }, rates: { conn_ip: 'off' } });
    assert.equal(l.concurrency.conc_ip, 0);
    assert.equal(l.session.max_rcpts, 0);
    assert.equal(l.rates.conn_ip, null);
  });

  it('a rate or duration error says which forms are accepted', () => {
    assert.throws(() => parseRate('30/minute'), /"30\/minute" is not a rate: the window after "\/" is a duration such as 30s, 1m, 5m, 1h, 1d or 1w/);
    assert.throws(() => parseRate('30 per minute'), /"30 per minute" is not a rate: write N\/window, e.g\. 30\/1m/);
    refuses({ wait: 'soon' }, /"soon" is not a duration: a number with a unit ms, s, m, h, d or w/);
  });

  it('a required key: missing or empty is an error, and the dnsbl zone is one', () => {
    assert.throws(() => parseConfig('t.ini', SCHEMA, { main: {} }), /^t\.ini \[main\] needed: required, and missing|t\.ini \[main\] needed: required/);
    refuses({ needed: '' }, /\[main\] needed: must not be empty/);
    assert.throws(() => parseDnsblConfig({ main: { zones: 'zen' }, zen: { type: 'ip' } }), /shield\.dnsbl\.ini \[zen\] zone: required/);
  });
});

describe('config registry: one loader per file', () => {
  function fakeHaraka() {
    const callbacks = new Map<string, Array<(() => void) | undefined>>();
    const files = new Map<string, unknown>();
    const logs: string[] = [];
    const host = {
      config: {
        get: (name: string, _type?: unknown, cb?: () => void) => {
          // Haraka's loader keeps the last callback per file: record every get
          callbacks.set(name, [...(callbacks.get(name) ?? []), cb]);
          return files.get(name) ?? null;
        },
      },
      logerror: (m: string) => logs.push(`error ${m}`),
      loginfo: (m: string) => logs.push(`info ${m}`),
      logwarn: (m: string) => logs.push(`warn ${m}`),
    };
    const fire = (name: string) => {
      const cbs = callbacks.get(name) ?? [];
      cbs[cbs.length - 1]?.();
    };
    return { host, files, callbacks, fire, logs };
  }

  it('every asker gets the same file; its one callback reaches every listener; "reloaded" is logged after they ran', () => {
    const h = fakeHaraka();
    h.files.set('shield.relay.ini', { main: { networks: '10.0.0.0/8' } });
    const reg = new ConfigRegistry(h.host as never);
    const a = reg.ini('shield.relay.ini', RELAY_SCHEMA);
    const b = reg.ini('shield.relay.ini', RELAY_SCHEMA);
    assert.equal(a, b);
    const seen: string[] = [];
    a.onChange((c) => seen.push(`relay ${c.main.networks.join(',')}`));
    b.onChange((c) => seen.push(`rdns ${c.main.networks.length}`));
    h.files.set('shield.relay.ini', { main: { networks: '192.0.2.0/24' } });
    h.fire('shield.relay.ini');
    assert.deepEqual(seen, ['relay 192.0.2.0/24', 'rdns 1']);
    assert.equal(h.logs.at(-1), 'info reloaded shield.relay.ini');
    // the registry asked Haraka with one callback, always the same one
    const cbs = h.callbacks.get('shield.relay.ini') ?? [];
    assert.ok(cbs.every((cb) => cb && cb === cbs[0]));
  });

  it('the same listener twice is one listener; a listener that throws does not stop the others', () => {
    const h = fakeHaraka();
    const reg = new ConfigRegistry(h.host as never);
    const lines = reg.lines('shield.relay.networks');
    let n = 0;
    const fn = () => n++;
    lines.onChange(fn);
    lines.onChange(fn);
    lines.onChange(() => {
      throw new Error('boom');
    });
    let after = 0;
    lines.onChange(() => after++);
    h.files.set('shield.relay.networks', ['192.0.2.0/24']);
    h.fire('shield.relay.networks');
    assert.equal(n, 1);
    assert.equal(after, 1);
    assert.deepEqual(lines.current, ['192.0.2.0/24']);
    assert.ok(h.logs.some((l) => /^error applying shield\.relay\.networks: boom/.test(l)));
  });

  it('a file asked for with another schema is a programming error; an empty file name is no file', () => {
    const h = fakeHaraka();
    const reg = new ConfigRegistry(h.host as never);
    reg.ini('x.ini', SCHEMA_A);
    assert.throws(() => reg.ini('x.ini', SCHEMA_B), /x\.ini is already loaded with another schema or parser/);
    assert.deepEqual(reg.lines('').current, []);
    assert.equal(h.callbacks.has(''), false);
  });

  it('a bad edit keeps the last good value, tells no listener and logs no "reloaded"', () => {
    const h = fakeHaraka();
    h.files.set('x.ini', { main: { n: 2 } });
    const reg = new ConfigRegistry(h.host as never);
    const x = reg.ini('x.ini', SCHEMA_A);
    let told = 0;
    x.onChange(() => told++);
    h.files.set('x.ini', { main: { n: 'two ; 2' } });
    h.fire('x.ini');
    assert.equal(x.current.main.n, 2);
    assert.equal(told, 0);
    assert.ok(!h.logs.includes('info reloaded x.ini'));
    assert.match(h.logs.at(-1) ?? '', /^error x\.ini \[main\] n: .*; keeping the last good x\.ini$/);
  });
});

const SCHEMA_A = { main: { n: f.int(1, 'n') } } as const;
const SCHEMA_B = { main: { n: f.int(1, 'n') } } as const;

describe('list entries: what is not an address is never a name', () => {
  for (const [text, re] of [
    ['300.1.2.3', /"300\.1\.2\.3" is not a valid IP address or CIDR range/],
    ['10.0.0', /"10\.0\.0" is not a valid IP address or CIDR range/],
    ['10.0.0.0/33', /prefix length must be 0\.\.32/],
    ['2001:db8:::1', /"2001:db8:::1" is not a valid IP address or CIDR range/],
    ['foo', /"foo" is a single label, which would cover a whole top-level domain: write the kind out \(domain:foo/],
    ['host.123', /not a valid IP address, and not a host name \(the last label is all digits\)/],
    ['bad_name!.example', /is not a host or domain name/],
    ['user@300.1.2.3', /not a valid IP address, and not a host name/],
  ] as Array<[string, RegExp]>) {
    it(`refuses ${text}`, () => assert.throws(() => parseEntryValue(text), re));
  }

  it('a kind: prefix reads as in the files, a disagreeing --kind is refused, a TLD needs the kind written out', () => {
    assert.deepEqual(parseEntryText('rcpt:Someone@Example.com'), { kind: 'rcpt', value: 'someone@example.com' });
    assert.deepEqual(parseEntryText('rcpt:someone@example.com', 'rcpt'), { kind: 'rcpt', value: 'someone@example.com' });
    assert.throws(() => parseEntryText('rcpt:someone@example.com', 'sender'), /the prefix rcpt: and the kind sender disagree/);
    assert.deepEqual(parseEntryText('domain:top'), { kind: 'domain', value: 'top' });
    assert.deepEqual(parseEntryText('top', 'sender'), { kind: 'sender', value: 'top' });
    assert.deepEqual(parseEntryText('user@localhost'), { kind: 'sender', value: 'user@localhost' });
  });

  it('a file line with several addresses is refused; a reason in words, names or addresses is kept (an upgrade keeps old lines)', () => {
    assert.throws(() => parseListLine('foo bar baz qux'), /single label/);
    assert.throws(() => parseListLine('198.51.100.7 203.0.113.9'), /"203\.0\.113\.9" after the entry looks like another entry: write one entry per line/);
    assert.throws(() => parseListLine('spam.example.com rcpt:x@example.net'), /looks like another entry/);
    assert.throws(() => parseListLine('spam.example.com 2001:db8::/32'), /looks like another entry/);
    assert.deepEqual(parseListLine('spam.example.com seen in a run, e.g. twice'), { kind: 'domain', value: 'spam.example.com', reason: 'seen in a run, e.g. twice' });
    assert.deepEqual(parseListLine('198.51.100.7 ticket 42 (v1.2)'), { kind: 'ip', value: '198.51.100.7/32', reason: 'ticket 42 (v1.2)' });
    for (const reason of ['Outlook.com spam wave', 'node.js scanner', 'hotmail.com relay abuse', 'bad@example.com']) {
      assert.equal(parseListLine(`192.0.2.1 ${reason}`).reason, reason);
    }
    assert.equal(reasonLooksLikeEntry('hotmail.com relay abuse'), 'name');
    assert.equal(reasonLooksLikeEntry('bad@example.com'), 'address');
    assert.equal(reasonLooksLikeEntry('seen twice'), null);
  });

  it('"#" starts a comment at the start of a line or after a space, never inside an address', () => {
    const lines = ['sender:info#sales@example.com', 'sender:partner#billing@example.net # our partner', '# a comment', '198.51.100.7 #spam'];
    const got = parseLines(lines, (t) => parseListLine(t), () => assert.fail('no bad line'));
    assert.deepEqual(
      got.map((e) => `${e.kind}:${e.value}`),
      ['sender:info#sales@example.com', 'sender:partner#billing@example.net', 'ip:198.51.100.7/32'],
    );
  });
});

describe('config: every problem at once (for haraka-shield check)', () => {
  it('with onError, parsing goes on past each problem and a bad key keeps its default', () => {
    const errs: string[] = [];
    const c = parseConfig('t.ini', SCHEMA, { main: { count: 'lots', nets: '10.0.0.0/8 ; x', naem: 'y' }, extra: {} } as never, undefined, (e) => errs.push(e.message));
    assert.equal(c.main.count, 3);
    assert.deepEqual(c.main.nets, []);
    assert.deepEqual(errs, [
      't.ini [extra]: unknown section (known: main)',
      't.ini [main] naem: unknown key (known: nets, patterns, count, wait, name, text, needed); did you mean name?',
      't.ini [main] nets: "10.0.0.0/8 ; x": a value may not contain ";" or "#" (a comment goes on a line of its own, starting with ";" or "#")',
      't.ini [main] count: "lots" is not an integer',
      't.ini [main] needed: required, and missing',
    ]);
  });

  it('"did you mean" only for a near miss', () => {
    assert.equal(didYouMean('netwroks', ['networks', 'domains']), '; did you mean networks?');
    assert.equal(didYouMean('budgte', ['budget']), '; did you mean budget?');
    assert.equal(didYouMean('colour', ['networks', 'domains']), '');
  });
});

describe('config: ini lines Haraka would drop or let win', () => {
  it('a line without "=", a key set twice, key and key[] mixed: each an error with its line', () => {
    const errs = lintIni('shield.relay.ini', '[main]\nauth_relay false\nnetworks = 10.0.0.0/8\r\nnetworks = 192.168.0.0/16\ndomains[] = a.example\ndomains[] = b.example\ndomains = c.example\n; fine\n[other]\nnetworks = x\n').map((e) => e.message);
    assert.deepEqual(errs, [
      'shield.relay.ini [main]: line 2: "auth_relay false" is not "key = value", a [section] or a comment (Haraka would ignore it)',
      'shield.relay.ini [main] networks: line 4: set again (first on line 3); only one value would count: write it once',
      'shield.relay.ini [main] domains: line 7: set again (first on line 5); only one value would count: write it once, or every line as key[] =',
    ]);
  });
});
