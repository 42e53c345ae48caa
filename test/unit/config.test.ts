import assert from 'node:assert/strict';
import { ConfigHandle, f, parseConfig, parseDuration, parseRate } from '../../plugins/shield/core/config';
import { ConfigError } from '../../plugins/shield/core/errors';
import { cidrItem } from '../../plugins/shield/core/net';

const SCHEMA = {
  main: {
    enabled: f.bool(true, 'on or off'),
    count: f.int(3, 'a count', { min: 1, max: 10 }),
    mode: f.oneOf(['a', 'b'] as const, 'a', 'mode'),
    nets: f.list([], 'networks', cidrItem),
    wait: f.duration(2, 'a wait'),
    rate: f.rate(null, 'a rate'),
  },
  extra: { name: f.str('x', 'a name') },
} as const;

describe('config', () => {
  it('fills defaults and freezes the result deeply', () => {
    const c = parseConfig('t.ini', SCHEMA, { main: {} });
    assert.deepEqual(c, { main: { enabled: true, count: 3, mode: 'a', nets: [], wait: 2, rate: null }, extra: { name: 'x' } });
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.main) && Object.isFrozen(c.main.nets));
    assert.throws(() => {
      (c.main as { count: number }).count = 5;
    }, TypeError);
  });

  it('converts values as haraka-config hands them over (numbers, strings, arrays)', () => {
    const c = parseConfig('t.ini', SCHEMA, {
      main: { enabled: 'no', count: 7, mode: 'B', nets: ['192.0.2.0/24, 2001:db8::/32', '198.51.100.7'], wait: '250ms', rate: '30/1m' },
    });
    assert.equal(c.main.enabled, false);
    assert.equal(c.main.count, 7);
    assert.equal(c.main.mode, 'b');
    assert.deepEqual(c.main.nets, ['192.0.2.0/24', '2001:db8::/32', '198.51.100.7/32']);
    assert.equal(c.main.wait, 0.25);
    assert.deepEqual(c.main.rate, { limit: 30, windowSec: 60 });
  });

  const bad: Array<[Record<string, Record<string, unknown>>, RegExp]> = [
    [{ main: { enabled: 'maybe' } }, /^t\.ini \[main\] enabled: "maybe" is not a boolean/],
    [{ main: { count: 0 } }, /^t\.ini \[main\] count: 0 is below the minimum 1/],
    [{ main: { count: '3x' } }, /^t\.ini \[main\] count: "3x" is not an integer/],
    [{ main: { mode: 'c' } }, /^t\.ini \[main\] mode: "c" is not one of a, b/],
    [{ main: { nets: '192.0.2.5/24' } }, /^t\.ini \[main\] nets: "192.0.2.5\/24" has host bits set/],
    [{ main: { nets: 'not-an-ip' } }, /\[main\] nets: "not-an-ip" is not an IP address/],
    [{ main: { wait: 'soon' } }, /\[main\] wait: "soon" is not a duration/],
    [{ main: { rate: '30 per minute' } }, /\[main\] rate: "30 per minute" is not a rate/],
    [{ main: { cuont: 1 } }, /^t\.ini \[main\] cuont: unknown key/],
    [{ mian: { count: 1 } }, /^t\.ini \[mian\]: unknown section/],
  ];
  for (const [raw, re] of bad) {
    it(`refuses ${JSON.stringify(raw)} naming file, section and key`, () => {
      assert.throws(
        () => parseConfig('t.ini', SCHEMA, raw as never),
        (err: unknown) => err instanceof ConfigError && re.test(err.message),
      );
    });
  }

  it('parses durations and rates', () => {
    assert.equal(parseDuration('90'), 90);
    assert.equal(parseDuration('5m'), 300);
    assert.equal(parseDuration('7d'), 604800);
    assert.deepEqual(parseRate('500/1h'), { limit: 500, windowSec: 3600 });
    assert.deepEqual(parseRate('2000/d'), { limit: 2000, windowSec: 86400 });
  });

  it('live reload keeps the last good config when the new file is bad, and says why', () => {
    let raw: Record<string, Record<string, unknown>> = { main: { count: 4 } };
    let onChange: (() => void) | undefined;
    const errors: string[] = [];
    const plugin = {
      config: {
        get: (_n: string, _t: unknown, cb?: () => void) => {
          onChange = cb;
          return raw;
        },
      },
      logerror: (m: string) => errors.push(m),
      loginfo: () => undefined,
    };
    const h = new ConfigHandle(plugin as never, 't.ini', SCHEMA);
    const seen: number[] = [];
    h.onChange((c) => seen.push(c.main.count));
    assert.equal(h.current.main.count, 4);

    raw = { main: { count: 'lots' } };
    onChange?.();
    assert.equal(h.current.main.count, 4, 'last good config stays');
    assert.match(errors[0] ?? '', /t\.ini \[main\] count: "lots" is not an integer; keeping the last good t\.ini/);

    raw = { main: { count: 9 } };
    onChange?.();
    assert.equal(h.current.main.count, 9);
    assert.deepEqual(seen, [9]);
  });

  it('a bad file at first load throws (Haraka refuses to start, loudly)', () => {
    const plugin = { config: { get: () => ({ main: { count: 99 } }) }, logerror: () => undefined, loginfo: () => undefined };
    assert.throws(() => new ConfigHandle(plugin as never, 't.ini', SCHEMA), /t\.ini \[main\] count: 99 is above the maximum 10/);
  });
});
