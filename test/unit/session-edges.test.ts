/** The Session: the identity it pins, re-announcements, state, resources and exemptions, at their edges. */
import assert from 'node:assert/strict';
import type { HarakaConnection } from '../../plugins/shield/core/haraka';
import { existingSession, isExemptRecipient, openSession, Session, sessionOf } from '../../plugins/shield/core/session';

function conn(ip = '198.18.0.1', over: Record<string, unknown> = {}): HarakaConnection {
  return {
    uuid: 'U-1',
    remote: { ip, port: 4000, host: null, is_private: false, is_local: false },
    local: { ip: '198.18.255.25', port: 25, host: 'mx' },
    notes: {},
    transaction: null,
    ...over,
  } as unknown as HarakaConnection;
}

describe('Session: the pinned identity', () => {
  it('holds the addresses and ports as numbers and canonical text; flags as booleans', () => {
    const c = conn('2001:DB8::7', { remote: { ip: '2001:DB8::7', port: '4321', host: null, is_private: 1, is_local: 0 }, local: { ip: '2001:db8::25', port: '587' } });
    const s = new Session(c, 'U-9');
    assert.equal(s.uuid, 'U-9');
    assert.equal(s.conn, c);
    assert.deepEqual({ ...s.identity, ip: s.identity.ip.text }, {
      ip: '2001:db8::7',
      ipText: '2001:db8::7',
      port: 4321,
      localIp: '2001:db8::25',
      localPort: 587,
      proxied: false,
      isPrivate: true,
      isLocal: false,
    });
    assert.ok(Object.isFrozen(s.identity));
  });

  it('an address that does not parse is kept as text, with 0.0.0.0 as the parsed form; missing ports are 0', () => {
    const c = conn('unix-socket', { remote: { ip: 'unix-socket', port: undefined, is_private: false, is_local: true }, local: undefined });
    const s = new Session(c, 'x');
    assert.equal(s.identity.ipText, 'unix-socket');
    assert.equal(s.identity.ip.text, '0.0.0.0');
    assert.equal(s.identity.port, 0);
    assert.equal(s.identity.localIp, '');
    assert.equal(s.identity.localPort, 0);
    assert.equal(s.identity.isLocal, true);
  });

  it('proxied when a PROXY note is there', () => {
    assert.equal(new Session(conn('198.18.0.1', { notes: { proxy: { src_ip: '198.18.0.1' } } }), 'x').identity.proxied, true);
    assert.equal(new Session(conn(), 'x').identity.proxied, false);
  });

  it('the same announcement: same PROXY note, same address (in any notation), same port', () => {
    const c = conn('::ffff:198.18.0.1');
    const s = openSession(c).session;
    assert.equal(s.sameAnnouncement(c), true);
    c.remote.ip = '198.18.0.1';
    assert.equal(s.sameAnnouncement(c), true, 'the mapped and plain forms are one address');
    (c.remote as { port: number }).port = 4001;
    assert.equal(s.sameAnnouncement(c), false, 'another source port is another client');
    assert.equal(openSession(c).reannounced, true);
    assert.equal(s.reannounced, true);
  });

  it('sessionOf opens once per connection; existingSession does not open', () => {
    const c = conn();
    assert.equal(existingSession(c), undefined);
    const s = sessionOf(c);
    assert.equal(sessionOf(c), s);
    assert.equal(existingSession(c), s);
    assert.equal(s.uuid, 'U-1');
    assert.equal(s.summaryLogged, false);
    assert.equal(s.closed, false);
    assert.deepEqual([s.relayClient, s.allowlisted, s.ptr, s.iprev, s.fcrdns], [false, false, null, null, null]);
  });
});

describe('Session: state', () => {
  it('authUser: a non-empty string or null', () => {
    const c = conn();
    const s = sessionOf(c);
    assert.equal(s.authUser, null);
    c.notes.auth_user = '';
    assert.equal(s.authUser, null);
    c.notes.auth_user = 42;
    assert.equal(s.authUser, null);
    c.notes.auth_user = 'alice@example.com';
    assert.equal(s.authUser, 'alice@example.com');
  });

  it('peek reads a plugin state without creating it', () => {
    const s = sessionOf(conn());
    assert.equal(s.peek('k'), undefined);
    assert.equal(s.local('k', () => 5), 5);
    assert.equal(s.peek('k'), 5);
    assert.equal(s.local('k', () => 6), 5);
    assert.equal(s.local('z', () => undefined), undefined);
  });

  it('outside a transaction the state lives until a transaction starts', () => {
    const c = conn();
    const s = sessionOf(c);
    s.txn('t', () => ({ n: 0 })).n = 3;
    assert.equal(s.txn('t', () => ({ n: 0 })).n, 3);
    (c as { transaction: unknown }).transaction = { uuid: 'T1' };
    assert.equal(s.txn('t', () => ({ n: 0 })).n, 0);
    s.txn('t', () => ({ n: 0 })).n = 7;
    assert.equal(s.txn('t', () => ({ n: 9 })).n, 7);
    (c as { transaction: unknown }).transaction = null;
    assert.equal(s.txn('t', () => ({ n: 1 })).n, 1, 'after the transaction ended: fresh');
  });

  it('tag scores: transaction findings override the connection one of the same tag; ties keep their order', () => {
    const c = conn('198.18.0.9', { transaction: { uuid: 'T1' } });
    const s = sessionOf(c);
    s.tag('a', 1);
    s.tag('b', 1);
    s.tag('c');
    s.tag('a', 4, 'transaction');
    assert.deepEqual(s.findings(), [
      { tag: 'a', score: 4 },
      { tag: 'b', score: 1 },
      { tag: 'c', score: 0 },
    ]);
    assert.equal(s.score, 5);
    s.tag('inf', Number.POSITIVE_INFINITY);
    assert.equal(s.score, 5, 'an infinite score counts 0');
    assert.deepEqual(s.tags, ['a', 'b', 'c', 'inf']);
    s.tag('neg', -0.0004);
    s.tag('neg2', -0.0004);
    assert.equal(s.score, 4.999, 'rounded to 3 decimals');
  });
});

describe('Session: resources', () => {
  it('a resource released by hand is not released again at close', async () => {
    const s = sessionOf(conn());
    let n = 0;
    const h = s.hold(() => {
      n++;
    });
    await h?.release();
    await h?.release();
    await s.close();
    assert.equal(n, 1);
    assert.equal(s.closed, true);
  });

  it('close waits for every release; a late resource whose release fails is ignored', async () => {
    const s = sessionOf(conn());
    const order: string[] = [];
    s.hold(async () => {
      await new Promise((r) => setTimeout(r, 20));
      order.push('slow');
    });
    await s.close();
    assert.deepEqual(order, ['slow']);
    assert.equal(
      s.hold(async () => {
        throw new Error('late and failing');
      }),
      null,
    );
    await new Promise((r) => setImmediate(r));
  });

  it('close reports each failing release to onError, by default to nobody', async () => {
    const s = sessionOf(conn());
    s.hold(async () => {
      throw new Error('one');
    });
    await s.close();
    const t = sessionOf(conn());
    const seen: string[] = [];
    t.hold(async () => {
      throw new Error('two');
    });
    await t.close((e) => seen.push((e as Error).message));
    await t.close((e) => seen.push(`again ${(e as Error).message}`));
    assert.deepEqual(seen, ['two']);
  });
});

describe('Session: exemptions', () => {
  it('each reason on its own, and each switch only turns its own reason off', () => {
    const c = conn();
    const s = sessionOf(c);
    assert.equal(s.exemption(), null);
    s.relayClient = true;
    assert.equal(s.exemption(), 'relay_client');
    assert.equal(s.exemption({ relayClients: true }), 'relay_client');
    assert.equal(s.exemption({ relayClients: false }), null);
    s.relayClient = false;
    c.notes.auth_user = 'bob';
    assert.equal(s.exemption(), 'authenticated');
    assert.equal(s.exemption({ authenticated: false }), null);
    delete c.notes.auth_user;
    s.allowlisted = true;
    assert.equal(s.exemption(), 'allowlisted');
    assert.equal(s.exemption({ allowlisted: false }), null);
    s.allowlisted = false;
    const p = sessionOf(conn('10.0.0.1', { remote: { ip: '10.0.0.1', port: 1, is_private: true, is_local: false } }));
    assert.equal(p.exemption(), 'private_ip');
    assert.equal(p.exemption({ privateIps: false }), null);
    assert.equal(p.exemption({ relayClients: false, authenticated: false, allowlisted: false }), 'private_ip');
  });

  it('exempt recipients: no recipient or no local part is never exempt', () => {
    const ours = () => true;
    assert.equal(isExemptRecipient(null, ['postmaster'], ours), false);
    assert.equal(isExemptRecipient(undefined, ['postmaster'], ours), false);
    assert.equal(isExemptRecipient({ user: '', host: 'example.com' } as never, ['', 'postmaster'], ours), false);
    assert.equal(isExemptRecipient({ user: 'ABUSE', host: 'example.com' } as never, ['abuse'], ours), true);
    const asked: string[] = [];
    isExemptRecipient({ user: 'abuse', host: 'Example.COM' } as never, ['abuse'], (d) => (asked.push(d), true));
    assert.deepEqual(asked, ['Example.COM'], 'the domain goes to the caller as given');
  });
});
