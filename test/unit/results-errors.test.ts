/** The evidence record and summary line; the coded errors and their messages. */
import assert from 'node:assert/strict';
import {
  ConfigError,
  DnsError,
  HookTimeoutError,
  ShieldError,
  StoreError,
  asShieldError,
  errorMessage,
} from '../../plugins/shield/core/errors';
import type { HarakaConnection } from '../../plugins/shield/core/haraka';
import { record, summarize } from '../../plugins/shield/core/results';
import { sessionOf } from '../../plugins/shield/core/session';

function conn(over: Record<string, unknown> = {}): HarakaConnection & { added: Array<[string, unknown]> } {
  const added: Array<[string, unknown]> = [];
  return {
    added,
    uuid: 'U-1',
    remote: { ip: '::ffff:198.51.100.7', port: 4000, host: null, is_private: false, is_local: false },
    local: { ip: '192.0.2.25', port: 25, host: 'mx' },
    notes: {},
    results: { add: (p: { name: string }, o: unknown) => added.push([`conn:${p.name}`, o]), get: () => undefined },
    transaction: null,
    ...over,
  } as unknown as HarakaConnection & { added: Array<[string, unknown]> };
}

describe('results: record', () => {
  const plugin = { name: 'shield.dnsbl' };

  it('writes the evidence to the session and to connection.results under the plugin name', () => {
    const c = conn();
    record(plugin, c, { check: 'dnsbl', outcome: 'fail', reason: 'listed', score: 2 });
    record(plugin, c, { check: 'dnsbl', outcome: 'pass', reason: 'clean' });
    assert.deepEqual(c.added, [
      ['conn:shield.dnsbl', { fail: 'dnsbl:listed', score: 2 }],
      ['conn:shield.dnsbl', { pass: 'dnsbl:clean' }],
    ]);
    assert.deepEqual(sessionOf(c).evidence, [
      { check: 'dnsbl', outcome: 'fail', reason: 'listed', score: 2 },
      { check: 'dnsbl', outcome: 'pass', reason: 'clean' },
    ]);
  });

  it('a score of 0 is written; transaction-stage evidence goes to the transaction as well', () => {
    const txn: unknown[] = [];
    const c = conn({ transaction: { uuid: 'T1', results: { add: (_p: unknown, o: unknown) => txn.push(o) } } });
    record(plugin, c, { check: 'dnsbl', outcome: 'err', reason: 'timeout', score: 0 });
    assert.deepEqual(c.added, [['conn:shield.dnsbl', { err: 'dnsbl:timeout', score: 0 }]]);
    assert.deepEqual(txn, [{ err: 'dnsbl:timeout', score: 0 }]);
  });

  it('a results object that throws does not break the check; the session still has the evidence', () => {
    const c = conn({
      results: {
        add: () => {
          throw new Error('fixture');
        },
      },
    });
    assert.doesNotThrow(() => record(plugin, c, { check: 'relay', outcome: 'pass', reason: 'relay_network' }));
    assert.equal(sessionOf(c).evidence.length, 1);
  });
});

describe('results: the summary line', () => {
  it('each distinct entry once, in the order first seen, with scores and tags; the pinned address', () => {
    const c = conn();
    const s = sessionOf(c);
    record({ name: 'p' }, c, { check: 'relay', outcome: 'pass', reason: 'relay_network' });
    record({ name: 'p' }, c, { check: 'dnsbl', outcome: 'fail', reason: 'listed', score: 2 });
    record({ name: 'p' }, c, { check: 'relay', outcome: 'pass', reason: 'relay_network' });
    record({ name: 'p' }, c, { check: 'dnsbl', outcome: 'fail', reason: 'listed', score: 0 });
    s.tag('dnsbl.zen', 1);
    s.tag('rdns.generic', 1);
    s.tag('dnsbl.zen', 1);
    assert.equal(summarize(c), 'shield summary ip=198.51.100.7 relay=pass:relay_network dnsbl=fail:listed(2) dnsbl=fail:listed(0) tags=dnsbl.zen,rdns.generic');
  });

  it('no checks: says so', () => {
    assert.equal(summarize(conn()), 'shield summary ip=198.51.100.7 no-checks');
  });

  it('tags alone', () => {
    const c = conn();
    sessionOf(c).tag('x', 1);
    assert.equal(summarize(c), 'shield summary ip=198.51.100.7 tags=x');
  });
});

describe('errors', () => {
  it('ShieldError: a code, temporary by default, its cause kept', () => {
    const cause = new Error('root');
    const e = new ShieldError('INTERNAL', 'bad', undefined, { cause });
    assert.equal(e.name, 'ShieldError');
    assert.equal(e.code, 'INTERNAL');
    assert.equal(e.message, 'bad');
    assert.equal(e.temporary, true);
    assert.equal(e.cause, cause);
    assert.ok(e instanceof Error);
    assert.equal(new ShieldError('CONFIG', 'x', false).temporary, false);
  });

  it('ConfigError names the file, section and key, and is permanent', () => {
    const e = new ConfigError('shield.dnsbl.ini', 'zen', 'zone', 'not a zone');
    assert.equal(e.message, 'shield.dnsbl.ini [zen] zone: not a zone');
    assert.equal(e.name, 'ConfigError');
    assert.equal(e.code, 'CONFIG');
    assert.equal(e.temporary, false);
    assert.deepEqual([e.file, e.section, e.key], ['shield.dnsbl.ini', 'zen', 'zone']);
    assert.equal(new ConfigError('shield.ini', 'main', undefined, 'unknown section').message, 'shield.ini [main]: unknown section');
    assert.equal(new ConfigError('shield.ini', undefined, undefined, 'unreadable').message, 'shield.ini: unreadable');
    assert.equal(new ConfigError('shield.ini', undefined, 'k', 'x').message, 'shield.ini k: x');
  });

  it('DnsError names the query, and the detail or else the code', () => {
    const e = new DnsError('DNS_TIMEOUT', 'example.com', 'MX', 'no answer after 2 tries');
    assert.equal(e.message, 'DNS MX example.com: no answer after 2 tries');
    assert.equal(e.name, 'DnsError');
    assert.equal(e.code, 'DNS_TIMEOUT');
    assert.equal(e.temporary, true);
    assert.deepEqual([e.qname, e.qtype], ['example.com', 'MX']);
    assert.equal(new DnsError('DNS_SERVFAIL', 'x.example', 'A').message, 'DNS A x.example: DNS_SERVFAIL');
  });

  it('StoreError and HookTimeoutError are temporary', () => {
    const cause = new Error('ECONNREFUSED');
    const s = new StoreError('STORE_UNAVAILABLE', 'redis down', cause);
    assert.deepEqual([s.name, s.code, s.message, s.temporary, s.cause], ['StoreError', 'STORE_UNAVAILABLE', 'redis down', true, cause]);
    const h = new HookTimeoutError('rcpt', 2500);
    assert.deepEqual([h.name, h.code, h.message, h.temporary], ['HookTimeoutError', 'HOOK_TIMEOUT', 'hook rcpt ran past its budget of 2500 ms', true]);
  });

  it('asShieldError keeps a ShieldError, wraps anything else as INTERNAL with the cause', () => {
    const d = new DnsError('DNS_REFUSED', 'x', 'A');
    assert.equal(asShieldError(d), d);
    const raw = new TypeError('oops');
    const w = asShieldError(raw);
    assert.deepEqual([w.code, w.message, w.temporary, w.cause], ['INTERNAL', 'oops', true, raw]);
    assert.equal(asShieldError('text').message, 'text');
  });

  it('errorMessage: the message of anything with one (also from another realm), else its text', () => {
    assert.equal(errorMessage(new Error('e1')), 'e1');
    assert.equal(errorMessage({ message: 'foreign realm' }), 'foreign realm');
    assert.equal(errorMessage({ message: 42 }), '[object Object]');
    assert.equal(errorMessage('plain'), 'plain');
    assert.equal(errorMessage(null), 'null');
    assert.equal(errorMessage(undefined), 'undefined');
    assert.equal(errorMessage(7), '7');
  });
});
