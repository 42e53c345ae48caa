/**
 * One vocabulary for what every check found, and one place that writes it down: Haraka's
 * `connection.results` (so karma, watch and the log see it) plus the suite's own list, which becomes
 * one summary line per connection.
 */
import type { HarakaConnection } from './haraka';
import { sessionOf } from './session';

export type Outcome = 'pass' | 'fail' | 'skip' | 'err';

export interface Evidence {
  /** the check that produced it, e.g. "relay", "dnsbl", "rdns.ptr" */
  readonly check: string;
  readonly outcome: Outcome;
  /** a short machine-readable reason: "relay_network", "not_local", "timeout" */
  readonly reason: string;
  readonly score?: number;
  readonly data?: Readonly<Record<string, unknown>>;
}

/** Record one piece of evidence: the session's list, and Haraka's results of the connection (and of the transaction if one is open). */
export function record(plugin: { name: string }, conn: HarakaConnection, ev: Evidence): void {
  sessionOf(conn).evidence.push(ev);
  const entry: Record<string, unknown> = { [ev.outcome]: `${ev.check}:${ev.reason}` };
  if (ev.score !== undefined) entry.score = ev.score;
  try {
    // under the plugin's name, where karma and watch look; transaction-stage evidence goes to the
    // transaction as well (as with Haraka's own plugins)
    conn.results.add(plugin, entry);
    conn.transaction?.results.add(plugin, entry);
  } catch {
    /* a results object from a stripped-down fixture must not break a check */
  }
}

/**
 * "shield summary ip=198.51.100.7 relay=pass:relay_network dnsbl=fail:listed(2) tags=..." — each
 * distinct entry once, in the order first seen; the address is the session's pinned one.
 */
export function summarize(conn: HarakaConnection): string {
  const s = sessionOf(conn);
  const parts = [...new Set(s.evidence.map((e) => `${e.check}=${e.outcome}:${e.reason}${e.score !== undefined ? `(${e.score})` : ''}`))];
  if (s.tags.length) parts.push(`tags=${[...new Set(s.tags)].join(',')}`);
  return `shield summary ip=${s.identity.ipText} ${parts.join(' ') || 'no-checks'}`;
}
