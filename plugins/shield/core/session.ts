/**
 * One Session per SMTP connection: the one owner of what the suite knows and holds for a client.
 *
 *  - the client identity (address, port, whether it came through PROXY), pinned at the first
 *    connect_init and never changed: Haraka accepts more PROXY lines from a trusted peer and re-runs
 *    the connect hooks with each new address, so a second announcement closes the connection;
 *  - exemptions (relay client, authenticated, allowlisted, private), computed in one place;
 *  - evidence and tags, summarised in one log line when the session closes;
 *  - per-plugin state for the connection and for the current transaction (reset when the
 *    transaction changes: RSET, a new MAIL, a new HELO);
 *  - resources (leases, timers): released when the session closes, including a resource granted
 *    after it closed (an admit that was still waiting on Redis when the client hung up).
 *
 * Plugins reach it with `sessionOf(conn)` and never keep their own per-connection maps.
 */
import type { HarakaAddress, HarakaConnection } from './haraka';
import { parseIp, type ParsedIp } from './net';
import type { Evidence } from './results';

export interface ClientIdentity {
  readonly ip: ParsedIp;
  /** the normalised address text (IPv4-mapped IPv6 as IPv4) */
  readonly ipText: string;
  readonly port: number;
  readonly localIp: string;
  readonly localPort: number;
  /** announced by a trusted PROXY peer */
  readonly proxied: boolean;
  /** loopback, private or link-local (Haraka's remote.is_private) */
  readonly isPrivate: boolean;
  readonly isLocal: boolean;
}

export type ExemptionReason = 'relay_client' | 'authenticated' | 'allowlisted' | 'private_ip';

export interface ExemptOptions {
  relayClients?: boolean;
  authenticated?: boolean;
  allowlisted?: boolean;
  privateIps?: boolean;
}

export interface PtrNote {
  readonly status: 'ok' | 'nxdomain' | 'nodata' | 'error';
  readonly names: readonly string[];
}

export interface IprevNote {
  readonly result: 'pass' | 'fail' | 'temperror' | 'permerror';
  readonly ip: string;
  readonly name: string | null;
}

/** A resource the session holds; `release` runs once, when the session closes or on request. */
export interface Held {
  release(): Promise<void>;
}

const NO_TXN = '';

export class Session {
  readonly identity: ClientIdentity;
  /** the PROXY note of the announcement the identity was pinned from (a new one = a new announcement) */
  private readonly proxyNote: unknown;
  private closedFlag = false;
  /** a second identity was announced: the connection is being closed */
  reannounced = false;
  /** the summary line has been logged */
  summaryLogged = false;

  /** set by shield.relay at connect */
  relayClient = false;
  /** set by shield.blocklist at connect */
  allowlisted = false;
  /** PTR answer of the suite's lookup_rdns */
  ptr: PtrNote | null = null;
  /** RFC 8601 iprev result (shield.rdns), for Authentication-Results */
  iprev: IprevNote | null = null;
  /** the forward-confirmed rDNS name, or null (shield.rdns) */
  fcrdns: string | null = null;

  readonly evidence: Evidence[] = [];
  /** every tag of the connection, in the order first seen (for the summary line) */
  readonly tags: string[] = [];
  /** soft findings of the connection: tag -> score */
  private readonly connScores = new Map<string, number>();
  private readonly state = new Map<string, unknown>();
  private txnId: string = NO_TXN;
  private readonly txnState = new Map<string, unknown>();
  private readonly held = new Set<() => Promise<void>>();

  constructor(
    readonly conn: HarakaConnection,
    readonly uuid: string,
  ) {
    const ip = parseIp(conn.remote.ip);
    this.identity = Object.freeze({
      ip: ip ?? (parseIp('0.0.0.0') as ParsedIp),
      ipText: ip?.text ?? String(conn.remote.ip),
      port: Number(conn.remote.port) || 0,
      localIp: String(conn.local?.ip ?? ''),
      localPort: Number(conn.local?.port) || 0,
      proxied: conn.notes.proxy !== undefined,
      isPrivate: !!conn.remote.is_private,
      isLocal: !!conn.remote.is_local,
    });
    this.proxyNote = conn.notes.proxy;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Is the connection still the client this session was opened for? */
  sameAnnouncement(conn: HarakaConnection): boolean {
    return conn.notes.proxy === this.proxyNote && parseIp(conn.remote.ip)?.text === this.identity.ipText && Number(conn.remote.port) === this.identity.port;
  }

  /** the authenticated user, if AUTH succeeded */
  get authUser(): string | null {
    const u = this.conn.notes.auth_user;
    return typeof u === 'string' && u ? u : null;
  }

  /**
   * Why a reputation check does not apply to this client ("relay_client", "authenticated",
   * "allowlisted", "private_ip"), or null. The caller records `skip:<reason>`.
   */
  exemption(opts: ExemptOptions = {}): ExemptionReason | null {
    if (opts.relayClients !== false && this.relayClient) return 'relay_client';
    if (opts.authenticated !== false && this.authUser) return 'authenticated';
    if (opts.allowlisted !== false && this.allowlisted) return 'allowlisted';
    if (opts.privateIps !== false && this.identity.isPrivate) return 'private_ip';
    return null;
  }

  /**
   * A soft finding: a tag with the score it adds to the suite's sum (shield.ini [policy]). The same
   * tag counts once; `transaction` scope ends with the transaction (a sender domain's listing).
   */
  tag(name: string, score = 0, scope: 'connection' | 'transaction' = 'connection'): void {
    if (!this.tags.includes(name)) this.tags.push(name);
    (scope === 'transaction' ? this.txn<Map<string, number>>('#tags', () => new Map()) : this.connScores).set(name, Number.isFinite(score) ? score : 0);
  }

  /** the soft findings that count now (the connection's and the current transaction's), highest score first */
  findings(): Array<{ tag: string; score: number }> {
    const all = new Map([...this.connScores, ...this.txn<Map<string, number>>('#tags', () => new Map())]);
    return [...all].map(([tag, score]) => ({ tag, score })).sort((a, b) => b.score - a.score);
  }

  /** the suite's sum of soft findings now */
  get score(): number {
    return Math.round(this.findings().reduce((sum, f) => sum + f.score, 0) * 1000) / 1000;
  }

  /** a plugin's state for this connection, created by `init` on first use */
  local<T>(key: string, init: () => T): T {
    if (!this.state.has(key)) this.state.set(key, init());
    return this.state.get(key) as T;
  }

  /** a plugin's state if it has any */
  peek<T>(key: string): T | undefined {
    return this.state.get(key) as T | undefined;
  }

  /**
   * A plugin's state for the current transaction, created by `init` on first use. Every key is
   * reset together when the transaction changes (RSET, a new MAIL, a new HELO).
   */
  txn<T>(key: string, init: () => T): T {
    const id = this.conn.transaction?.uuid ?? NO_TXN;
    if (id !== this.txnId) {
      this.txnId = id;
      this.txnState.clear();
    }
    if (!this.txnState.has(key)) this.txnState.set(key, init());
    return this.txnState.get(key) as T;
  }

  /**
   * Hold a resource for the life of the session. When the session has closed already (the client
   * hung up while the resource was being granted), it is released at once and null is returned.
   */
  hold(release: () => Promise<void> | void): Held | null {
    let done = false;
    const once = async (): Promise<void> => {
      if (done) return;
      done = true;
      this.held.delete(once);
      await release();
    };
    if (this.closedFlag) {
      void once().catch(() => undefined);
      return null;
    }
    this.held.add(once);
    return { release: once };
  }

  /** Close: release everything held (errors are reported, never thrown). Idempotent. */
  async close(onError: (err: unknown) => void = () => undefined): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    const all = [...this.held];
    this.held.clear();
    await Promise.all(all.map((r) => r().catch(onError)));
  }
}

const sessions = new WeakMap<HarakaConnection, Session>();

/** The connection's Session, opened on first use (normally at connect_init). */
export function sessionOf(conn: HarakaConnection): Session {
  let s = sessions.get(conn);
  if (!s) {
    s = new Session(conn, conn.uuid);
    sessions.set(conn, s);
  }
  return s;
}

/** The connection's Session if one was opened. */
export function existingSession(conn: HarakaConnection): Session | undefined {
  return sessions.get(conn);
}

/**
 * At connect_init: open the session, or tell a second announcement of the client from a repeat of
 * the same one (each shield plugin's connect_init hook calls this). Returns false for a second
 * announcement (another PROXY line, a connect re-run with another address).
 */
export function openSession(conn: HarakaConnection): { session: Session; fresh: boolean; reannounced: boolean } {
  const existing = sessions.get(conn);
  if (!existing) return { session: sessionOf(conn), fresh: true, reannounced: false };
  if (existing.reannounced || !existing.sameAnnouncement(conn)) {
    existing.reannounced = true;
    return { session: existing, fresh: false, reannounced: true };
  }
  return { session: existing, fresh: false, reannounced: false };
}

/** "postmaster", "abuse" at one of our domains (RFC 5321 4.5.1, RFC 2142) */
export function isExemptRecipient(rcpt: HarakaAddress | undefined | null, localParts: readonly string[], isLocalDomain: (domain: string) => boolean): boolean {
  if (!rcpt?.user) return false;
  if (!localParts.includes(rcpt.user.toLowerCase())) return false;
  return rcpt.host ? isLocalDomain(rcpt.host) : true;
}
