import assert from 'node:assert/strict';
import { addressEvidence, addressReplies, clientEvidence, clientReplies, type RefusalOptions } from '../../plugins/shield/checks/list-replies';
import type { AddressVerdict, ClientVerdict, Match } from '../../plugins/shield/checks/list-match';
import type { ListEntry } from '../../plugins/shield/core/list-entries';
import { formatReply } from '../../plugins/shield/core/policy';

function match(over: Partial<ListEntry> = {}): Match {
  const entry: ListEntry = { list: 'block', kind: 'ip', value: '192.0.2.0/24', reason: 'spam run', source: 'cli:root@mx1', addedAt: null, expiresAt: null, ...over };
  return { entry, specificity: 24 };
}

const PLAIN: RefusalOptions = { show_reason: false, contact: '' };
const CHATTY: RefusalOptions = { show_reason: true, contact: 'contact postmaster@example.com' };

describe('list replies: refusing a blocked client', () => {
  const byIp: ClientVerdict = { verdict: 'block', by: 'ip', subject: '192.0.2.7', match: match() };
  const byRdns: ClientVerdict = { verdict: 'block', by: 'rdns', subject: 'host.spam.example', match: match({ kind: 'domain', value: 'spam.example' }) };
  const byHelo: ClientVerdict = { verdict: 'block', by: 'helo', subject: 'friend.example', match: match({ kind: 'domain', value: 'friend.example' }) };

  it('at connect: 554 5.7.1 and disconnect (RFC 5321 3.1); a DNS fault defers with 421 4.7.1', () => {
    const r = clientReplies(PLAIN, byIp, 'connect');
    assert.deepEqual(r.reject, { code: 554, status: '5.7.1', text: "Connection refused: your address 192.0.2.7 is on this server's local blocklist", disconnect: true });
    assert.deepEqual(r.defer, { code: 421, status: '4.7.1', text: 'Cannot verify your host name 192.0.2.7 right now; please try again later', disconnect: true });
  });

  it('later (HELO, RCPT): 550 5.7.1, a DNS fault 451 4.7.1; the connection stays open', () => {
    const r = clientReplies(PLAIN, byRdns, 'rcpt');
    assert.deepEqual(r.reject, { code: 550, status: '5.7.1', text: "your host name host.spam.example is on this server's local blocklist", disconnect: false });
    assert.deepEqual(r.defer, { code: 451, status: '4.7.1', text: 'Cannot verify your host name host.spam.example right now; please try again later', disconnect: false });
    assert.equal(formatReply(clientReplies(PLAIN, byHelo, 'helo').reject), "550 5.7.1 the HELO name friend.example is on this server's local blocklist");
  });

  it('names what matched: the address, the host name or the HELO name', () => {
    assert.match(clientReplies(PLAIN, byIp, 'helo').reject.text, /^your address 192\.0\.2\.7 /);
    assert.match(clientReplies(PLAIN, byRdns, 'helo').reject.text, /^your host name host\.spam\.example /);
    assert.match(clientReplies(PLAIN, byHelo, 'helo').reject.text, /^the HELO name friend\.example /);
  });

  it('the reason only with show_reason, made printable; the contact always when set', () => {
    assert.equal(clientReplies(CHATTY, byIp, 'rcpt').reject.text, "your address 192.0.2.7 is on this server's local blocklist (spam run); contact postmaster@example.com");
    assert.equal(clientReplies({ show_reason: false, contact: 'see https://example.com/unblock' }, byIp, 'rcpt').reject.text, "your address 192.0.2.7 is on this server's local blocklist; see https://example.com/unblock");
    assert.equal(clientReplies({ show_reason: true, contact: '' }, byIp, 'rcpt').reject.text, "your address 192.0.2.7 is on this server's local blocklist (spam run)");
    const nasty: ClientVerdict = { ...byIp, match: match({ reason: 'bad\r\n550 injected\tline' }) };
    assert.equal(clientReplies(CHATTY, nasty, 'rcpt').reject.text, "your address 192.0.2.7 is on this server's local blocklist (bad 550 injected line); contact postmaster@example.com");
    const noReason: ClientVerdict = { ...byIp, match: match({ reason: '' }) };
    assert.equal(clientReplies({ show_reason: true, contact: '' }, noReason, 'rcpt').reject.text, "your address 192.0.2.7 is on this server's local blocklist");
    assert.equal(clientReplies({ show_reason: false, contact: 'a\r\nb' }, byIp, 'rcpt').reject.text, "your address 192.0.2.7 is on this server's local blocklist; a b");
  });
});

describe('list replies: refusing a blocked sender or recipient', () => {
  const sender: AddressVerdict = { verdict: 'block', address: 'spammer@example.net', match: match({ kind: 'sender', value: 'spammer@example.net', reason: 'phish' }) };
  it('550 5.7.1 to reject, 451 4.7.1 to defer, with the same text', () => {
    const r = addressReplies(PLAIN, 'sender', sender);
    assert.deepEqual(r.reject, { code: 550, status: '5.7.1', text: "Sender spammer@example.net is on this server's local blocklist", disconnect: false });
    assert.deepEqual(r.defer, { code: 451, status: '4.7.1', text: "Sender spammer@example.net is on this server's local blocklist", disconnect: false });
    assert.equal(
      formatReply(addressReplies(CHATTY, 'rcpt', { ...sender, address: 'victim@example.com' }).reject),
      "550 5.7.1 Recipient victim@example.com is on this server's local blocklist (phish); contact postmaster@example.com",
    );
  });
});

describe('list replies: evidence', () => {
  it('a client block is fail, with the entry, its source and the subject', () => {
    const v: ClientVerdict = { verdict: 'block', by: 'ip', subject: '192.0.2.7', match: match() };
    assert.deepEqual(clientEvidence(v), {
      check: 'blocklist',
      outcome: 'fail',
      reason: 'block_ip',
      data: { entry: 'ip:192.0.2.0/24', source: 'cli:root@mx1', subject: '192.0.2.7' },
    });
  });

  it('a block that stands only on a DNS fault is err (never a permanent rejection)', () => {
    const v: ClientVerdict = { verdict: 'block', by: 'rdns', subject: 'h.spam.example', match: match({ kind: 'domain', value: 'spam.example' }), unconfirmed: true };
    assert.deepEqual(clientEvidence(v), {
      check: 'blocklist',
      outcome: 'err',
      reason: 'block_rdns_unconfirmed',
      data: { entry: 'domain:spam.example', source: 'cli:root@mx1', subject: 'h.spam.example' },
    });
    assert.equal(clientEvidence({ ...v, unconfirmed: false }).outcome, 'fail');
  });

  it('an allow is pass, named by what matched', () => {
    const v: ClientVerdict = { verdict: 'allow', by: 'rdns', subject: 'mx.partner.example', match: match({ list: 'allow', kind: 'domain', value: 'partner.example', source: 'shield.blocklist.allow:3' }) };
    assert.deepEqual(clientEvidence(v), {
      check: 'blocklist',
      outcome: 'pass',
      reason: 'allow_rdns',
      data: { entry: 'domain:partner.example', source: 'shield.blocklist.allow:3', subject: 'mx.partner.example' },
    });
    // unconfirmed only qualifies a block; an allow stays a pass
    assert.equal(clientEvidence({ ...v, unconfirmed: true }).outcome, 'pass');
  });

  it('without a matched entry the data is empty', () => {
    assert.deepEqual(clientEvidence({ verdict: 'block', by: 'helo', subject: 'x.example' }), { check: 'blocklist', outcome: 'fail', reason: 'block_helo', data: {} });
  });

  it('sender and recipient verdicts: block is fail, allow is pass', () => {
    const m = match({ kind: 'sender', value: 'a@example.net', source: 'file:2' });
    assert.deepEqual(addressEvidence('sender', { verdict: 'block', address: 'a@example.net', match: m }), {
      check: 'blocklist',
      outcome: 'fail',
      reason: 'block_sender',
      data: { entry: 'sender:a@example.net', source: 'file:2', subject: 'a@example.net' },
    });
    assert.deepEqual(addressEvidence('rcpt', { verdict: 'allow', address: 'a@example.net', match: m }), {
      check: 'blocklist',
      outcome: 'pass',
      reason: 'allow_rcpt',
      data: { entry: 'sender:a@example.net', source: 'file:2', subject: 'a@example.net' },
    });
  });
});
