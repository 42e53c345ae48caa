/**
 * Local block and allow lists: matching and decisions. Pure: the entries come in, a verdict comes out;
 * the one I/O it needs (forward confirmation of an rDNS name) is passed in.
 *
 * Matching:
 *   ip      longest prefix wins (hash probe per prefix length in use: O(33) / O(129), any list size)
 *   names   a domain entry covers the name and its subdomains; the entry with the most labels wins
 *           (one hash probe per label of the name)
 *   sender/rcpt  an exact address beats any domain entry; domains as for names
 * Precedence:
 *   - within a kind the most specific entry decides; allow wins a tie;
 *   - for the client, IP entries decide first; only when no IP entry matches do name entries count:
 *     block entries match the rDNS name(s) or the HELO name, allow entries only a forward-confirmed
 *     rDNS name (a HELO or an unconfirmed PTR is the client's own claim and never earns trust);
 *   - only client allow entries (ip, confirmed rDNS) make a client "allowlisted" for the reputation
 *     checks; sender and rcpt allow entries only carve exceptions out of sender and rcpt blocks
 *     (envelope addresses are forged at will).
 */
import { IpSet, normalizeHostname, parseIp, type ParsedIp } from '../core/net';
import type { EntryKind, ListEntry, ListName } from '../core/list-entries';
import { normalizeAddress } from '../core/list-entries';

export interface Match {
  readonly entry: ListEntry;
  /** higher = more specific: prefix length, label count, or 1000 for an exact address */
  readonly specificity: number;
}

const EXACT_ADDRESS = 1000;

function live(e: ListEntry, now: number): boolean {
  return e.expiresAt === null || e.expiresAt > now;
}

function better(a: Match | null, b: Match | null): Match | null {
  if (!a) return b;
  if (!b) return a;
  return b.specificity > a.specificity ? b : a;
}

/** One set of entries (a file, the shared store, ...) indexed for lookups, built once per change. */
export class EntryIndex {
  private readonly ips: Record<ListName, IpSet<ListEntry>> = { block: new IpSet(), allow: new IpSet() };
  private readonly maps: Record<ListName, Record<Exclude<EntryKind, 'ip'>, Map<string, ListEntry>>> = {
    block: { domain: new Map(), sender: new Map(), rcpt: new Map() },
    allow: { domain: new Map(), sender: new Map(), rcpt: new Map() },
  };
  constructor(entries: Iterable<ListEntry> = []) {
    for (const e of entries) this.add(e);
  }

  /**
   * Build an index without holding the event loop for long: yields every `chunk` entries, so a
   * node reloading a large shared list keeps answering SMTP meanwhile.
   */
  static async build(entries: readonly ListEntry[], chunk = 5000): Promise<EntryIndex> {
    const ix = new EntryIndex();
    for (let i = 0; i < entries.length; i++) {
      ix.add(entries[i] as ListEntry);
      if (i % chunk === chunk - 1) await new Promise((r) => setImmediate(r));
    }
    return ix;
  }

  get size(): number {
    let n = this.ips.block.size + this.ips.allow.size;
    for (const list of ['block', 'allow'] as const) for (const m of Object.values(this.maps[list])) n += m.size;
    return n;
  }

  /** add an entry (a later entry for the same list, kind and value replaces the earlier one) */
  add(e: ListEntry): void {
    if (e.kind === 'ip') this.ips[e.list].add(e.value, e);
    else this.maps[e.list][e.kind].set(e.value, e);
  }

  /** remove the entry of a list, kind and value; true when it was there */
  remove(list: ListName, kind: EntryKind, value: string): boolean {
    return kind === 'ip' ? this.ips[list].delete(value) : this.maps[list][kind].delete(value);
  }

  ip(list: ListName, ip: ParsedIp, now: number): Match | null {
    const hit = this.ips[list].match(ip, (e) => live(e, now));
    return hit ? { entry: hit.value, specificity: Number(hit.cidr.slice(hit.cidr.indexOf('/') + 1)) } : null;
  }

  /** the most specific entry covering a normalised domain name */
  name(list: ListName, kind: Exclude<EntryKind, 'ip'>, domain: string, now: number): Match | null {
    const m = this.maps[list][kind];
    if (m.size === 0) return null;
    let suffix = domain;
    let labels = domain.split('.').length;
    for (;;) {
      const e = m.get(suffix);
      if (e && live(e, now)) return { entry: e, specificity: labels };
      const dot = suffix.indexOf('.');
      if (dot === -1) return null;
      suffix = suffix.slice(dot + 1);
      labels--;
    }
  }

  /** a normalised envelope address: the exact address, else its domain */
  address(list: ListName, kind: 'sender' | 'rcpt', address: string, now: number): Match | null {
    const m = this.maps[list][kind];
    if (m.size === 0) return null;
    const e = m.get(address);
    if (e && live(e, now)) return { entry: e, specificity: EXACT_ADDRESS };
    return this.name(list, kind, address.slice(address.lastIndexOf('@') + 1), now);
  }
}

/** The lists of one node: several indexes (files, shared store, ...) asked together. */
export class Lists {
  constructor(readonly indexes: readonly EntryIndex[]) {}

  private best(f: (ix: EntryIndex) => Match | null): Match | null {
    let b: Match | null = null;
    for (const ix of this.indexes) b = better(b, f(ix));
    return b;
  }

  ip(list: ListName, ip: ParsedIp, now: number): Match | null {
    return this.best((ix) => ix.ip(list, ip, now));
  }
  name(list: ListName, domain: string, now: number): Match | null {
    return this.best((ix) => ix.name(list, 'domain', domain, now));
  }
  address(list: ListName, kind: 'sender' | 'rcpt', address: string, now: number): Match | null {
    return this.best((ix) => ix.address(list, kind, address, now));
  }
}

/** block beats allow only when strictly more specific */
function settle(block: Match | null, allow: Match | null): { verdict: 'block' | 'allow'; match: Match } | null {
  if (allow && (!block || allow.specificity >= block.specificity)) return { verdict: 'allow', match: allow };
  if (block) return { verdict: 'block', match: block };
  return null;
}

export type ClientBy = 'ip' | 'rdns' | 'helo';

export interface ClientVerdict {
  readonly verdict: 'block' | 'allow' | 'none';
  readonly by?: ClientBy;
  /** the name (or address) that matched */
  readonly subject?: string;
  readonly match?: Match;
  /** a block that stands only because an allow could not be confirmed (DNS fault): defer, never reject */
  readonly unconfirmed?: boolean;
  /** forward confirmations that failed on a DNS error */
  readonly dnsErrors?: readonly string[];
}

export interface ClientInput {
  readonly ip: string;
  /** PTR names of the client (as returned, any order) */
  readonly ptrNames: readonly string[];
}

export interface ClientDeps {
  readonly now: number;
  /** does `name` resolve (A/AAAA) to `ip`? throws on a DNS fault */
  confirm(name: string, ip: ParsedIp): Promise<boolean>;
  /** most PTR names to consider (default 5) */
  readonly maxNames?: number;
}

/** The client's standing at connect: its IP, then its rDNS names. */
export async function checkClient(input: ClientInput, lists: Lists, deps: ClientDeps): Promise<ClientVerdict> {
  const ip = parseIp(input.ip);
  if (!ip) return { verdict: 'none' };
  const byIp = settle(lists.ip('block', ip, deps.now), lists.ip('allow', ip, deps.now));
  if (byIp) return { verdict: byIp.verdict, by: 'ip', subject: ip.text, match: byIp.match };

  const names = [...new Set(input.ptrNames.map((n) => normalizeHostname(n, { underscore: true })).filter((n): n is string => n !== null))].slice(0, deps.maxNames ?? 5);
  let block: { name: string; m: Match } | null = null;
  const allows: Array<{ name: string; m: Match }> = [];
  for (const name of names) {
    const b = lists.name('block', name, deps.now);
    if (b && (!block || b.specificity > block.m.specificity)) block = { name, m: b };
    const a = lists.name('allow', name, deps.now);
    if (a) allows.push({ name, m: a });
  }
  // allow candidates that could win, confirmed in parallel
  const candidates = allows.filter((a) => !block || a.m.specificity >= block.m.specificity);
  const dnsErrors: string[] = [];
  const confirmed = await Promise.all(
    candidates.map((a) =>
      deps.confirm(a.name, ip).catch(() => {
        dnsErrors.push(a.name);
        return false;
      }),
    ),
  );
  const winner = candidates.filter((_, i) => confirmed[i]).sort((x, y) => y.m.specificity - x.m.specificity)[0];
  if (winner) return { verdict: 'allow', by: 'rdns', subject: winner.name, match: winner.m, dnsErrors };
  if (block) return { verdict: 'block', by: 'rdns', subject: block.name, match: block.m, unconfirmed: dnsErrors.length > 0, dnsErrors };
  return { verdict: 'none', dnsErrors };
}

/** A HELO name against the block list (only asked when the client's IP and rDNS decided nothing). */
export function checkHelo(helo: string, lists: Lists, now: number): ClientVerdict {
  const name = normalizeHostname(helo, { underscore: true });
  if (!name) return { verdict: 'none' };
  const m = lists.name('block', name, now);
  return m ? { verdict: 'block', by: 'helo', subject: name, match: m } : { verdict: 'none' };
}

export interface AddressVerdict {
  readonly verdict: 'block' | 'allow' | 'none';
  readonly address: string;
  readonly match?: Match;
}

/** An envelope sender or recipient: block unless an allow entry is at least as specific. */
export function checkAddress(kind: 'sender' | 'rcpt', rawAddress: string, lists: Lists, now: number): AddressVerdict {
  const address = normalizeAddress(rawAddress);
  if (!address) return { verdict: 'none', address: rawAddress };
  const s = settle(lists.address('block', kind, address, now), lists.address('allow', kind, address, now));
  return s ? { verdict: s.verdict, address, match: s.match } : { verdict: 'none', address };
}
