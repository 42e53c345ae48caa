/**
 * From evidence to an SMTP reply. Each check maps its outcomes to an action (reject, defer, tag,
 * ignore); the suite-wide mode (enforce | dryrun) decides whether a reject or defer is sent or only
 * logged. Replies carry RFC 3463 enhanced status codes.
 */
import DSN from 'haraka-dsn';
import type { Evidence } from './results';

export type Action = 'reject' | 'defer' | 'tag' | 'ignore';
export const ACTIONS: readonly Action[] = ['reject', 'defer', 'tag', 'ignore'];
export type Mode = 'enforce' | 'dryrun';

export interface Reply {
  /** SMTP reply code, e.g. 550 */
  readonly code: number;
  /** enhanced status code, e.g. "5.7.1" */
  readonly status: string;
  /** words a remote postmaster can act on */
  readonly text: string;
  /** close the connection after the reply */
  readonly disconnect?: boolean;
}

export function reply(code: number, status: string, text: string, disconnect = false): Reply {
  if (String(code)[0] !== status[0]) throw new Error(`reply ${code} with status ${status}: classes differ`);
  return Object.freeze({ code, status, text, disconnect });
}

export function formatReply(r: Reply): string {
  return `${r.code} ${r.status} ${r.text}`;
}

/** The reply as the DSN object Haraka's connection.respond() understands (it uses our code). */
export function toDsn(r: Reply): unknown {
  const [, sub, det] = r.status.split('.').map(Number);
  return DSN.create(r.code, r.text, sub, det);
}

export interface Decision {
  readonly action: Action;
  /** what to send now; null when nothing is to be sent (pass, ignore, tag, dry run) */
  readonly reply: Reply | null;
  /** the reply that would have been sent in enforce mode (for dry-run logs) */
  readonly wouldSend: Reply | null;
}

export interface OutcomeActions {
  readonly fail: Action;
  readonly err: Action;
}

/**
 * Decide what to do about one piece of evidence. `replies.reject` answers a failing check,
 * `replies.defer` a check that could not decide (or a fail whose action is defer).
 */
export function decide(ev: Evidence, actions: OutcomeActions, mode: Mode, replies: { reject: Reply; defer: Reply }): Decision {
  if (ev.outcome === 'pass' || ev.outcome === 'skip') return { action: 'ignore', reply: null, wouldSend: null };
  const action = ev.outcome === 'fail' ? actions.fail : actions.err;
  // an infrastructure fault never becomes a permanent rejection
  const effective: Action = ev.outcome === 'err' && action === 'reject' ? 'defer' : action;
  const r = effective === 'reject' ? replies.reject : effective === 'defer' ? replies.defer : null;
  if (!r) return { action: effective, reply: null, wouldSend: null };
  return { action: effective, reply: mode === 'enforce' ? r : null, wouldSend: r };
}
