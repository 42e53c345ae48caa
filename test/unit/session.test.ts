/** The Session lifecycle: pinned identity, per-transaction state, resources released on close. */
import assert from 'node:assert/strict';
import type { HarakaConnection } from '../../plugins/shield/core/haraka';
import { existingSession, isExemptRecipient, openSession, sessionOf } from '../../plugins/shield/core/session';

function conn(ip = '198.18.0.1', over: Record<string, unknown> = {}): HarakaConnection {
  return {
    uuid: 'U-1',
    remote: { ip, port: 4000, host: null, is_private: false, is_local: false },
    local: { ip: '198.18.255.25', port: 25, host: 'mx' },
    notes: { proxy: { src_ip: ip } },
    transaction: null,
    ...over,
  } as unknown as HarakaConnection;
}

describe('Session', () => {
  it('pins the identity at open; hooks of the same announcement see the same session', () => {
    const c = conn('::ffff:198.18.0.7');
    const a = openSession(c);
    assert.equal(a.fresh, true);
    assert.equal(a.session.identity.ipText, '198.18.0.7', 'IPv4-mapped is IPv4');
    assert.equal(a.session.identity.proxied, true);
    const b = openSession(c);
    assert.equal(b.fresh, false);
    assert.equal(b.reannounced, false);
    assert.equal(b.session, a.session);
  });

  it('a new PROXY announcement, even of the same address, or a changed address is a re-announcement, for good', () => {
    const c = conn();
    const s = openSession(c).session;
    c.notes.proxy = { src_ip: '198.18.0.1' };
    assert.equal(openSession(c).reannounced, true);
    const d = conn();
    openSession(d);
    d.remote.ip = '10.9.9.9';
    assert.equal(openSession(d).reannounced, true);
    d.remote.ip = '198.18.0.1';
    assert.equal(openSession(d).reannounced, true, 'going back does not undo it');
    assert.equal(s.identity.ipText, '198.18.0.1');
  });

  it('per-connection state lives as long as the session; per-transaction state resets with the transaction', () => {
    const c = conn();
    const s = sessionOf(c);
    s.local('x', () => ({ n: 1 })).n++;
    assert.equal(s.local('x', () => ({ n: 0 })).n, 2);
    (c as { transaction: unknown }).transaction = { uuid: 'T1' };
    s.txn('t', () => ({ n: 0 })).n++;
    assert.equal(s.txn('t', () => ({ n: 0 })).n, 1);
    (c as { transaction: unknown }).transaction = { uuid: 'T2' };
    assert.equal(s.txn('t', () => ({ n: 0 })).n, 0, 'a new transaction starts empty');
    assert.equal(s.local('x', () => ({ n: 0 })).n, 2);
  });

  it('releases what it holds on close, once; a resource granted after close is released at once', async () => {
    const s = sessionOf(conn());
    const released: string[] = [];
    const a = s.hold(() => {
      released.push('a');
    });
    s.hold(async () => {
      released.push('b');
    });
    await a?.release();
    await s.close();
    await s.close();
    assert.deepEqual(released, ['a', 'b']);
    const late = s.hold(() => {
      released.push('late');
    });
    assert.equal(late, null);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(released, ['a', 'b', 'late']);
  });

  it('a release that throws is reported and does not stop the others', async () => {
    const s = sessionOf(conn());
    const errors: unknown[] = [];
    let ran = false;
    s.hold(() => {
      throw new Error('boom');
    });
    s.hold(() => {
      ran = true;
    });
    await s.close((e) => errors.push(e));
    assert.equal(ran, true);
    assert.equal(errors.length, 1);
  });

  it('exemptions in order, and only those asked for', () => {
    const c = conn('10.1.1.1');
    c.remote.is_private = true;
    const s = sessionOf(c);
    assert.equal(s.exemption(), 'private_ip');
    s.allowlisted = true;
    assert.equal(s.exemption(), 'allowlisted');
    c.notes.auth_user = 'alice';
    assert.equal(s.exemption(), 'authenticated');
    s.relayClient = true;
    assert.equal(s.exemption(), 'relay_client');
    assert.equal(s.exemption({ relayClients: false, authenticated: false }), 'allowlisted');
    assert.equal(s.exemption({ relayClients: false, authenticated: false, allowlisted: false, privateIps: false }), null);
    assert.equal(existingSession(conn()), undefined);
  });

  it('exempt recipients: the local parts at our domains, case-insensitive; <postmaster> without a domain', () => {
    const ours = (d: string) => d.toLowerCase() === 'example.com';
    const a = (user: string | null, host: string | null) => ({ user, host }) as never;
    assert.equal(isExemptRecipient(a('Postmaster', 'Example.com'), ['postmaster', 'abuse'], ours), true);
    assert.equal(isExemptRecipient(a('abuse', 'example.com'), ['postmaster', 'abuse'], ours), true);
    assert.equal(isExemptRecipient(a('postmaster', 'victim.example'), ['postmaster', 'abuse'], ours), false);
    assert.equal(isExemptRecipient(a('postmaster', null), ['postmaster'], ours), true);
    assert.equal(isExemptRecipient(a('sales', 'example.com'), ['postmaster', 'abuse'], ours), false);
    assert.equal(isExemptRecipient(a('postmaster', 'example.com'), [], ours), false);
  });
});

describe('Session: soft findings and the score', () => {
  const txConn = (): HarakaConnection => conn('198.18.0.50', { transaction: { uuid: 'T1' } });

  it('a tag counts once whatever how often it is given; the score is the sum; findings weigh in order', () => {
    const c = txConn();
    const s = sessionOf(c);
    s.tag('rdns.generic:embeds_address', 1);
    s.tag('rdns.generic:embeds_address', 1);
    s.tag('dnsbl.zen', 2.5);
    s.tag('dnsbl.wl', -2);
    assert.equal(s.score, 1.5);
    assert.deepEqual(s.findings().map((f) => f.tag), ['dnsbl.zen', 'rdns.generic:embeds_address', 'dnsbl.wl']);
    assert.deepEqual(s.tags, ['rdns.generic:embeds_address', 'dnsbl.zen', 'dnsbl.wl']);
  });

  it('a transaction-scoped finding ends with its transaction; a connection finding stays', () => {
    const c = txConn();
    const s = sessionOf(c);
    s.tag('rdns.generic:embeds_address', 1);
    s.tag('dnsbl.dbl', 3, 'transaction');
    assert.equal(s.score, 4);
    (c as { transaction: unknown }).transaction = { uuid: 'T2' };
    assert.equal(s.score, 1, 'the sender domain of the first transaction no longer counts');
    assert.ok(s.tags.includes('dnsbl.dbl'), 'the summary still names it');
  });

  it('a score that is not a number counts 0; sums are rounded to 3 decimals', () => {
    const s = sessionOf(txConn());
    s.tag('a', Number.NaN);
    s.tag('b', 0.1);
    s.tag('c', 0.2);
    assert.equal(s.score, 0.3);
  });
});
