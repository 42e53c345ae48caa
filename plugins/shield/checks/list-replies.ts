/**
 * What a block or allow verdict becomes: its evidence and the SMTP replies, for shield.blocklist and
 * for `haraka-shield block test` (which shows the reply a client would get). Pure.
 */
import { safeText, type ListEntry } from '../core/list-entries';
import { reply, type Reply } from '../core/policy';
import type { Evidence } from '../core/results';
import type { AddressVerdict, ClientVerdict } from './list-match';

/** the [main] keys of shield.blocklist.ini that shape a refusal */
export interface RefusalOptions {
  readonly show_reason: boolean;
  readonly contact: string;
}

/** the refusal text for a client, sender or recipient block */
function refusalText(opts: RefusalOptions, what: string, entry: ListEntry | undefined): string {
  let text = `${what} is on this server's local blocklist`;
  if (opts.show_reason && entry?.reason) text += ` (${safeText(entry.reason)})`;
  if (opts.contact) text += `; ${safeText(opts.contact)}`;
  return text;
}

function clientWhat(v: ClientVerdict): string {
  if (v.by === 'ip') return `your address ${v.subject}`;
  if (v.by === 'rdns') return `your host name ${v.subject}`;
  return `the HELO name ${v.subject}`;
}

/** a client verdict (allow or block) as evidence; a block that stands only on a DNS fault is err */
export function clientEvidence(v: ClientVerdict): Evidence {
  const e = v.match?.entry;
  const data = e ? { entry: `${e.kind}:${e.value}`, source: e.source, subject: v.subject } : {};
  if (v.verdict === 'allow') return { check: 'blocklist', outcome: 'pass', reason: `allow_${v.by}`, data };
  if (v.unconfirmed) return { check: 'blocklist', outcome: 'err', reason: `block_${v.by}_unconfirmed`, data };
  return { check: 'blocklist', outcome: 'fail', reason: `block_${v.by}`, data };
}

/** a sender or recipient verdict (allow or block) as evidence */
export function addressEvidence(kind: 'sender' | 'rcpt', v: AddressVerdict): Evidence {
  const e = v.match?.entry;
  return {
    check: 'blocklist',
    outcome: v.verdict === 'block' ? 'fail' : 'pass',
    reason: `${v.verdict}_${kind}`,
    data: { entry: `${e?.kind}:${e?.value}`, source: e?.source, subject: v.address },
  };
}

/**
 * The replies for a blocked client at `stage`: 554 at connect (RFC 5321 3.1), 550 later; `defer` is
 * for a block that stands only because a forward confirmation failed on a DNS fault.
 */
export function clientReplies(opts: RefusalOptions, v: ClientVerdict, stage: 'connect' | 'helo' | 'rcpt'): { reject: Reply; defer: Reply } {
  const text = refusalText(opts, clientWhat(v), v.match?.entry);
  const retry = `Cannot verify your host name ${v.subject} right now; please try again later`;
  return stage === 'connect'
    ? { reject: reply(554, '5.7.1', `Connection refused: ${text}`, true), defer: reply(421, '4.7.1', retry, true) }
    : { reject: reply(550, '5.7.1', text), defer: reply(451, '4.7.1', retry) };
}

/** the replies for a blocked envelope sender or recipient */
export function addressReplies(opts: RefusalOptions, kind: 'sender' | 'rcpt', v: AddressVerdict): { reject: Reply; defer: Reply } {
  const text = refusalText(opts, `${kind === 'sender' ? 'Sender' : 'Recipient'} ${v.address}`, v.match?.entry);
  return { reject: reply(550, '5.7.1', text), defer: reply(451, '4.7.1', text) };
}
