/**
 * The replies of shield.limit's refusals. Pure. Connection limits and session abuse answer 421 and
 * close the connection; message and recipient rates 451 (the client retries later); recipients per
 * message 452 (RFC 5321 4.5.3.1.10: the client sends the rest in another message).
 */
import type { Rate } from '../core/config';
import { reply, type Reply } from '../core/policy';
import { describeRate, type Limits } from './limits';

function rateText(r: Rate | null): string {
  return r ? describeRate(r) : '';
}

function retryIn(retryAfterMs: number): string {
  return `please try again in ${Math.ceil(retryAfterMs / 1000)} s`;
}

/** conc_node: this Haraka process has as many connections as it takes */
export function nodeBusyReply(limit: number): Reply {
  return reply(421, '4.7.0', `Too many connections to this server right now (limit ${limit}); please try again later`, true);
}

/**
 * A connection limit (`lease`: conc_ip, conc_net, conc_total) or connection rate (conn_ip, conn_net,
 * daily_ip) that refused a client, named with whom it counts: the client, its network or everyone.
 */
export function connectRefusal(name: keyof Limits, limits: Limits, clientSubject: string, kind: 'lease' | 'rate', retryAfterMs: number): Reply {
  const limit = limits[name];
  const who = name.endsWith('_net') ? 'your network' : name === 'conc_total' ? 'all clients' : clientSubject;
  const text =
    kind === 'lease'
      ? `Too many connections from ${who} (limit ${String(limit)}, ${name}); please try again later`
      : `Connection rate limit exceeded for ${who} (${rateText(limit as Rate)}, ${name}); ${retryIn(retryAfterMs)}`;
  return reply(421, '4.7.0', text, true);
}

/** A message or recipient rate (per client, sender domain or user) that refused a MAIL or RCPT. */
export function transactionRefusal(
  kind: 'msg' | 'rcpt',
  name: keyof Limits,
  limits: Limits,
  who: { readonly client: string; readonly user: string | null; readonly senderHost: string | null | undefined },
  retryAfterMs: number,
): Reply {
  const what = kind === 'msg' ? 'Message' : 'Recipient';
  const subject = name.endsWith('_user') ? `user ${who.user}` : name.endsWith('_sender_domain') ? `sender domain ${who.senderHost}` : who.client;
  return reply(451, '4.7.1', `${what} rate limit exceeded for ${subject} (${rateText(limits[name] as Rate)}, ${name}); ${retryIn(retryAfterMs)}`);
}

/** max_rcpts / max_rcpts_relay */
export function tooManyRecipientsReply(max: number): Reply {
  return reply(452, '4.5.3', `Too many recipients for one message (limit ${max}); send the rest in another message`);
}

/**
 * max_mails / max_mails_relay: the connection has carried as many transactions as we take. 421
 * closes it (RFC 5321 4.2.3: "closing transmission channel"); a client reconnects and goes on, and
 * a client looping RSET + MAIL must reconnect, which the connection limits count.
 */
export function tooManyMailsReply(max: number): Reply {
  return reply(421, '4.7.0', `Too many messages in one connection (limit ${max}); please reconnect to send more`, true);
}

/** max_errors */
export function tooManyErrorsReply(errors: number): Reply {
  return reply(421, '4.7.0', `Too many errors (${errors}) in this session; closing the connection`, true);
}

/** max_unrecognized */
export function tooManyUnrecognizedReply(count: number): Reply {
  return reply(421, '4.7.0', `Too many unrecognized commands (${count}); closing the connection`, true);
}
