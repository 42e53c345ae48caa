/**
 * One vocabulary for what every check found, and one place that writes it down: Haraka's
 * `connection.results` (so karma, watch and the log see it) plus the suite's own list, which becomes
 * one summary line per connection.
 */
import type { HarakaConnection } from './haraka';

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

export interface ShieldNotes {
  evidence: Evidence[];
  tags: string[];
  /** the client may relay (set by shield.relay at connect, read by every exemption) */
  relayClient: boolean;
  /** the client is on an allow list (set by shield.blocklist) */
  allowlisted: boolean;
  /** PTR names found by the suite's lookup_rdns, for later checks */
  ptr?: { status: 'ok' | 'nxdomain' | 'nodata' | 'error'; names: readonly string[] };
  /** RFC 8601 iprev result of the client (set by shield.rdns), for Authentication-Results */
  iprev?: { result: 'pass' | 'fail' | 'temperror' | 'permerror'; ip: string; name: string | null };
  /** the client's forward-confirmed rDNS name, or null (set by shield.rdns) */
  fcrdns?: string | null;
  summaryLogged: boolean;
}

/** The suite's per-connection state, created on first use. */
export function shieldNotes(conn: HarakaConnection): ShieldNotes {
  let n = conn.notes.shield as ShieldNotes | undefined;
  if (!n) {
    n = { evidence: [], tags: [], relayClient: false, allowlisted: false, summaryLogged: false };
    conn.notes.shield = n;
  }
  return n;
}

/** Record one piece of evidence: the suite's list, and Haraka's results of the transaction if one is open, else of the connection. */
export function record(plugin: { name: string }, conn: HarakaConnection, ev: Evidence): void {
  shieldNotes(conn).evidence.push(ev);
  const entry: Record<string, unknown> = { [ev.outcome]: `${ev.check}:${ev.reason}` };
  if (ev.score !== undefined) entry.score = ev.score;
  try {
    // transaction-stage evidence belongs to the transaction (as with Haraka's own plugins)
    (conn.transaction ? conn.transaction.results : conn.results).add(plugin, entry);
  } catch {
    /* a results object from a stripped-down fixture must not break a check */
  }
}

/** "relay=pass:relay_network dnsbl=fail:zen(2)" */
export function summarize(conn: HarakaConnection): string {
  const n = shieldNotes(conn);
  const parts = n.evidence.map((e) => `${e.check}=${e.outcome}:${e.reason}${e.score !== undefined ? `(${e.score})` : ''}`);
  if (n.tags.length) parts.push(`tags=${n.tags.join(',')}`);
  return `shield summary ip=${conn.remote.ip} ${parts.join(' ') || 'no-checks'}`;
}
