import assert from 'node:assert/strict';
import {
  connectRefusal,
  nodeBusyReply,
  tooManyErrorsReply,
  tooManyRecipientsReply,
  tooManyUnrecognizedReply,
  transactionRefusal,
} from '../../plugins/shield/checks/limit-replies';
import type { Limits } from '../../plugins/shield/checks/limits';
import { formatReply } from '../../plugins/shield/core/policy';

const LIMITS: Limits = Object.freeze({
  conc_node: 50,
  conc_ip: 10,
  conc_net: 40,
  conc_total: 500,
  max_rcpts: 100,
  max_rcpts_relay: 1000,
  max_mails: 50,
  max_mails_relay: 500,
  max_unrecognized: 10,
  max_errors: 10,
  conn_ip: { limit: 60, windowSec: 60 },
  conn_net: { limit: 600, windowSec: 3600 },
  daily_ip: { limit: 2000, windowSec: 86400 },
  msg_ip: { limit: 30, windowSec: 60 },
  msg_sender_domain: { limit: 100, windowSec: 3600 },
  msg_user: { limit: 200, windowSec: 3600 },
  rcpt_ip: { limit: 5, windowSec: 90 },
  rcpt_sender_domain: { limit: 1000, windowSec: 3600 },
  rcpt_user: { limit: 1000, windowSec: 86400 },
});

describe('limit replies: connection limits close the connection with 421 4.7.0', () => {
  it('conc_node: this server is full', () => {
    const r = nodeBusyReply(50);
    assert.deepEqual(r, { code: 421, status: '4.7.0', text: 'Too many connections to this server right now (limit 50); please try again later', disconnect: true });
  });

  it('leases name whom they count: the client, its network, or all clients', () => {
    assert.equal(
      formatReply(connectRefusal('conc_ip', LIMITS, '198.51.100.7', 'lease', 0)),
      '421 4.7.0 Too many connections from 198.51.100.7 (limit 10, conc_ip); please try again later',
    );
    assert.equal(
      formatReply(connectRefusal('conc_net', LIMITS, '198.51.100.7', 'lease', 0)),
      '421 4.7.0 Too many connections from your network (limit 40, conc_net); please try again later',
    );
    assert.equal(
      formatReply(connectRefusal('conc_total', LIMITS, '198.51.100.7', 'lease', 0)),
      '421 4.7.0 Too many connections from all clients (limit 500, conc_total); please try again later',
    );
    assert.equal(connectRefusal('conc_ip', LIMITS, '198.51.100.7', 'lease', 0).disconnect, true);
  });

  it('rates give the rate and when to come back, rounded up to whole seconds', () => {
    const r = connectRefusal('conn_ip', LIMITS, '2001:db8:1:2::/64', 'rate', 1001);
    assert.deepEqual(r, {
      code: 421,
      status: '4.7.0',
      text: 'Connection rate limit exceeded for 2001:db8:1:2::/64 (60 per 1m, conn_ip); please try again in 2 s',
      disconnect: true,
    });
    assert.equal(
      connectRefusal('conn_net', LIMITS, '198.51.100.7', 'rate', 3000).text,
      'Connection rate limit exceeded for your network (600 per 1h, conn_net); please try again in 3 s',
    );
    assert.equal(
      connectRefusal('daily_ip', LIMITS, '198.51.100.7', 'rate', 1).text,
      'Connection rate limit exceeded for 198.51.100.7 (2000 per 1d, daily_ip); please try again in 1 s',
    );
    assert.match(connectRefusal('daily_ip', LIMITS, '198.51.100.7', 'rate', 0).text, /please try again in 0 s$/);
  });
});

describe('limit replies: transaction rates defer with 451 4.7.1 and keep the connection', () => {
  const who = { client: '198.51.100.7', user: 'alice', senderHost: 'example.org' };

  it('per client, per sender domain and per user, for messages and recipients', () => {
    assert.deepEqual(transactionRefusal('msg', 'msg_ip', LIMITS, who, 59_500), {
      code: 451,
      status: '4.7.1',
      text: 'Message rate limit exceeded for 198.51.100.7 (30 per 1m, msg_ip); please try again in 60 s',
      disconnect: false,
    });
    assert.equal(
      formatReply(transactionRefusal('msg', 'msg_sender_domain', LIMITS, who, 1000)),
      '451 4.7.1 Message rate limit exceeded for sender domain example.org (100 per 1h, msg_sender_domain); please try again in 1 s',
    );
    assert.equal(
      formatReply(transactionRefusal('msg', 'msg_user', LIMITS, who, 1000)),
      '451 4.7.1 Message rate limit exceeded for user alice (200 per 1h, msg_user); please try again in 1 s',
    );
    assert.equal(
      formatReply(transactionRefusal('rcpt', 'rcpt_ip', LIMITS, who, 2500)),
      '451 4.7.1 Recipient rate limit exceeded for 198.51.100.7 (5 per 90s, rcpt_ip); please try again in 3 s',
    );
    assert.equal(
      formatReply(transactionRefusal('rcpt', 'rcpt_sender_domain', LIMITS, who, 1000)),
      '451 4.7.1 Recipient rate limit exceeded for sender domain example.org (1000 per 1h, rcpt_sender_domain); please try again in 1 s',
    );
    assert.equal(
      formatReply(transactionRefusal('rcpt', 'rcpt_user', LIMITS, who, 1000)),
      '451 4.7.1 Recipient rate limit exceeded for user alice (1000 per 1d, rcpt_user); please try again in 1 s',
    );
  });
});

describe('limit replies: session limits', () => {
  it('too many recipients: 452 4.5.3, the client sends the rest in another message (RFC 5321 4.5.3.1.10)', () => {
    assert.deepEqual(tooManyRecipientsReply(100), {
      code: 452,
      status: '4.5.3',
      text: 'Too many recipients for one message (limit 100); send the rest in another message',
      disconnect: false,
    });
  });

  it('too many errors or unrecognized commands: 421 4.7.0 and the connection is closed', () => {
    assert.deepEqual(tooManyErrorsReply(11), { code: 421, status: '4.7.0', text: 'Too many errors (11) in this session; closing the connection', disconnect: true });
    assert.deepEqual(tooManyUnrecognizedReply(12), { code: 421, status: '4.7.0', text: 'Too many unrecognized commands (12); closing the connection', disconnect: true });
  });
});
