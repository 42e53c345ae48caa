/**
 * Block and allow entries as the whole suite sees them: what an entry is, how its text is read, and
 * the shared part of the lists that lives in the store (Redis for a fleet), which the CLI manages and
 * other plugins add to (`blockTemporarily`, e.g. shield.auth after a brute-force attack).
 *
 * Store layout (keys under the suite prefix): one journaled store set, `blocklist:entries`: member
 * "<list>|<kind>|<value>", value JSON {reason, source, added}, with the entry's own expiry. In Redis:
 * `blocklist:entries:exp` (sorted set member -> expiry), `:val` (hash member -> value), `:ver` (the
 * version, moved by a random step on every change) and `:log` (the journal of the last changes, each
 * naming the version it follows). A node holding version N reads only the
 * members changed since N; a node too far behind, or starting, reads everything in steps.
 */
import { parseLines } from './config';
import { normalizeHostname, parseCidr, parseIp } from './net';
import type { HarakaConfig } from './haraka';
import type { Clock, Store } from './store';
import { systemClock } from './store';

export type ListName = 'block' | 'allow';
export const LIST_NAMES: readonly ListName[] = ['block', 'allow'];

/**
 * ip: client address or CIDR range; domain: client host name (rDNS, HELO) and its subdomains;
 * sender / rcpt: an envelope address (user@domain) or a domain with its subdomains.
 */
export type EntryKind = 'ip' | 'domain' | 'sender' | 'rcpt';
export const ENTRY_KINDS: readonly EntryKind[] = ['ip', 'domain', 'sender', 'rcpt'];

export interface ListEntry {
  readonly list: ListName;
  readonly kind: EntryKind;
  /** canonical: "192.0.2.0/24", "example.com", "user@example.com" */
  readonly value: string;
  readonly reason: string;
  /** who or what added it: "cli:root@mx1", "shield.auth", "shield.blocklist.block:12" */
  readonly source: string;
  /** ms since the epoch, when known */
  readonly addedAt: number | null;
  /** ms since the epoch, or null for no expiry */
  readonly expiresAt: number | null;
}

export const ENTRIES_KEY = 'blocklist:entries';

/**
 * An envelope address as lists compare it: "local@domain" with the local part lower-cased (mail
 * systems treat it case-insensitively in practice) and the domain normalised; null if unusable.
 */
export function normalizeAddress(input: string): string | null {
  let s = input.trim();
  if (s.startsWith('<') && s.endsWith('>')) s = s.slice(1, -1).trim();
  const at = s.lastIndexOf('@');
  if (at <= 0) return null;
  let local = s.slice(0, at);
  const quoted = local.length >= 2 && local.startsWith('"') && local.endsWith('"');
  // Haraka hands plugins the local part unquoted; compare in that form
  if (quoted) local = local.slice(1, -1).replace(/\\(.)/g, '$1');
  const domain = normalizeHostname(s.slice(at + 1), { underscore: true });
  if (!local || !domain || /[\x00-\x1f<>]/.test(local) || (!quoted && /\s/.test(local))) return null;
  return `${local.toLowerCase()}@${domain}`;
}

/** digits and dots, or hex digits and colons: the writer meant an IP address or range */
const IP_LIKE = /^(?:\d+(?:\.\d*)*|[\da-f]*:[\da-f:.]*)(?:\/.*)?$/i;

/**
 * A host or domain name fit for a list entry: LDH labels (and "_"), IDN converted to A-labels, not
 * all digits at the end. One label covers a whole top-level domain: only when the kind was written
 * out (`domain:top`, `--kind domain`), never from a guess.
 */
function entryDomain(text: string, explicit: boolean): string {
  const d = normalizeHostname(text, { underscore: true });
  if (!d) throw new Error(`"${text}" is not a host or domain name`);
  const labels = d.split('.');
  if (/^\d+$/.test(labels[labels.length - 1] as string)) throw new Error(`"${text}" is not a valid IP address, and not a host name (the last label is all digits)`);
  if (labels.length < 2 && !explicit) {
    throw new Error(`"${text}" is a single label, which would cover a whole top-level domain: write the kind out (domain:${d}, sender:${d}) if that is what you mean`);
  }
  return d;
}

/**
 * Read one entry's text: the kind from `kind` when given, else guessed (IP/CIDR, address, domain).
 * Text that looks like an IP address or range but is not a valid one is an error, never a name.
 */
export function parseEntryValue(text: string, kind?: EntryKind): { kind: EntryKind; value: string } {
  const t = text.trim();
  if (!t) throw new Error('empty entry');
  if (/^\*?\.\S/.test(t)) throw new Error(`"${t}": write the domain without "*." or a leading dot; a domain entry already covers its subdomains`);
  const looksIp = parseIp(t.split('/')[0] as string) !== null;
  if (!looksIp && !t.includes('@') && IP_LIKE.test(t)) {
    if (kind === undefined || kind === 'ip') throw new Error(`"${t}" is not a valid IP address or CIDR range`);
  }
  const k: EntryKind = kind ?? (looksIp ? 'ip' : t.includes('@') ? 'sender' : 'domain');
  switch (k) {
    case 'ip':
      return { kind: k, value: parseCidr(t).cidr };
    case 'domain': {
      if (looksIp) throw new Error(`"${t}" is an IP address; use an ip entry`);
      return { kind: k, value: entryDomain(t, kind !== undefined) };
    }
    case 'sender':
    case 'rcpt': {
      if (t.startsWith('@')) return { kind: k, value: entryDomain(t.slice(1), kind !== undefined) };
      if (t.includes('@')) {
        const a = normalizeAddress(t);
        if (!a) throw new Error(`"${t}" is not an email address`);
        const domain = a.slice(a.lastIndexOf('@') + 1);
        entryDomain(domain, true);
        return { kind: k, value: a };
      }
      if (looksIp) throw new Error(`"${t}" is not an email address or domain name`);
      return { kind: k, value: entryDomain(t, kind !== undefined) };
    }
  }
}

const KIND_PREFIX = /^(ip|domain|sender|rcpt):(?!:)/;

/**
 * One entry as the files and the CLI write it: `[kind:]entry`. A `kind:` prefix and a `kind`
 * argument that disagree are an error.
 */
export function parseEntryText(text: string, kind?: EntryKind): { kind: EntryKind; value: string } {
  let entry = text.trim();
  const km = KIND_PREFIX.exec(entry);
  if (km) {
    const k = km[1] as EntryKind;
    if (kind !== undefined && kind !== k) throw new Error(`"${text}": the prefix ${k}: and the kind ${kind} disagree`);
    kind = k;
    entry = entry.slice(km[0].length);
  }
  return parseEntryValue(entry, kind);
}

/**
 * What the first word of a list line's reason looks like: another address or range, a `kind:`
 * entry, an email address or a dotted name, or nothing of the kind (null).
 */
export function reasonLooksLikeEntry(reason: string): 'ip' | 'prefixed' | 'address' | 'name' | null {
  const first = reason.trim().split(/\s+/)[0] ?? '';
  if (!first) return null;
  if (KIND_PREFIX.test(first)) return 'prefixed';
  if (parseIp(first.split('/')[0] as string)) return 'ip';
  if (/^[^\s@]*@[^\s@]+\.[^\s@]+$/.test(first)) return 'address';
  if (/^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.[a-z][a-z0-9-]*[a-z0-9]\.?$/i.test(first)) return 'name';
  return null;
}

/**
 * One list line without its comment: `[kind:]entry [reason text]`. A reason that starts with an IP
 * address or range, or a `kind:` entry, is refused: the writer put several entries on one line, and
 * the later ones would silently become a reason. A reason that starts with a name or an address
 * ("hotmail.com relay abuse") is kept (`haraka-shield check` warns about it).
 */
export function parseListLine(text: string): { kind: EntryKind; value: string; reason: string } {
  const m = /^(\S+)(?:\s+(.*))?$/.exec(text.trim());
  if (!m) throw new Error('empty entry');
  const reason = (m[2] ?? '').trim();
  const looks = reasonLooksLikeEntry(reason);
  if (looks === 'ip' || looks === 'prefixed') {
    throw new Error(`"${reason.split(/\s+/)[0]}" after the entry looks like another entry: write one entry per line (text after the entry is its reason)`);
  }
  return { ...parseEntryText(m[1] as string), reason };
}

/** The entries of a list file's lines, as `list` entries whose source is "file:line". */
export function listFileEntries(file: string, list: ListName, lines: readonly string[], onBad: (lineNo: number, message: string) => void): ListEntry[] {
  return parseLines(
    lines,
    (text, line) => ({ list, ...parseListLine(text), source: `${file}:${line}`, addedAt: null, expiresAt: null }),
    onBad,
  );
}

/**
 * The entries of the block and allow files named in shield.blocklist.ini. `source` gives a file's
 * lines: the suite's config registry in Haraka (which also reloads them), or Haraka's config loader
 * in the CLI. Bad lines go to `onBad` and are skipped.
 */
export function readListFiles(
  source: HarakaConfig | ((file: string) => readonly string[]),
  files: { readonly block_file: string; readonly allow_file: string },
  onBad: (file: string, lineNo: number, message: string) => void,
): ListEntry[] {
  const linesOf = typeof source === 'function' ? source : (file: string) => ((source.get(file, 'data') as string[] | null) ?? []);
  let out: ListEntry[] = [];
  for (const [list, file] of [
    ['block', files.block_file],
    ['allow', files.allow_file],
  ] as Array<[ListName, string]>) {
    if (!file) continue;
    // concat, not push(...): a list may hold hundreds of thousands of entries
    out = out.concat(listFileEntries(file, list, linesOf(file), (n, msg) => onBad(file, n, msg)));
  }
  return out;
}

/** Text fit for an SMTP reply or a log line: printable ASCII, one line, bounded. */
export function safeText(s: string, max = 200): string {
  const t = s.replace(/[^\x20-\x7e]+/g, ' ').replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 3)}...` : t;
}

export interface AddEntry {
  readonly list: ListName;
  readonly kind: EntryKind;
  /** canonical value (see parseEntryValue) */
  readonly value: string;
  /** seconds, or null for an entry that never expires */
  readonly ttlSec: number | null;
  readonly reason: string;
  readonly source: string;
}

function memberOf(list: ListName, kind: EntryKind, value: string): string {
  return `${list}|${kind}|${value}`;
}

/** Decode one store member; null for anything this version does not understand. */
export function decodeEntry(member: string, value: string, expiresAt: number | null): ListEntry | null {
  const [list, kind, ...rest] = member.split('|');
  const v = rest.join('|');
  if (!LIST_NAMES.includes(list as ListName) || !ENTRY_KINDS.includes(kind as EntryKind) || !v) return null;
  let meta: { reason?: unknown; source?: unknown; added?: unknown } = {};
  try {
    meta = JSON.parse(value) as typeof meta;
  } catch {
    /* an entry without readable metadata still blocks */
  }
  return {
    list: list as ListName,
    kind: kind as EntryKind,
    value: v,
    reason: typeof meta.reason === 'string' ? meta.reason : '',
    source: typeof meta.source === 'string' ? meta.source : 'unknown',
    addedAt: typeof meta.added === 'number' ? meta.added : null,
    expiresAt,
  };
}

/** The store-held part of the lists. The store decides the scope: Redis = the fleet, memory = this node. */
export class SharedLists {
  private readonly listeners: Array<() => void> = [];

  constructor(
    readonly store: Store,
    private readonly now: Clock = systemClock,
  ) {}

  /** called after this process changed the lists (so the node applies it at once) */
  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  async add(e: AddEntry): Promise<void> {
    if (e.ttlSec !== null && !(e.ttlSec > 0)) throw new Error('ttl must be positive');
    const meta = JSON.stringify({ reason: safeText(e.reason, 500), source: safeText(e.source, 100), added: this.now() });
    await this.store.setPut(ENTRIES_KEY, memberOf(e.list, e.kind, e.value), meta, e.ttlSec);
    this.changed();
  }

  async remove(list: ListName, kind: EntryKind, value: string): Promise<boolean> {
    const had = await this.store.setDelete(ENTRIES_KEY, memberOf(list, kind, value));
    if (had) this.changed();
    return had;
  }

  async entries(): Promise<ListEntry[]> {
    return (await this.snapshot()).entries;
  }

  /** every entry, and the version they are of (read in steps) */
  async snapshot(): Promise<{ version: number; entries: ListEntry[] }> {
    const snap = await this.store.setSnapshot(ENTRIES_KEY);
    const entries: ListEntry[] = [];
    for (const s of snap.entries) {
      const e = decodeEntry(s.member, s.value, s.expiresAt);
      if (e) entries.push(e);
    }
    return { version: snap.version, entries };
  }

  /**
   * What changed since `since`: entries added or changed, and entries removed or expired; null when
   * a snapshot must be read instead (see Store.setChanges).
   */
  async changes(since: number, max = 5000): Promise<{ version: number; added: ListEntry[]; removed: Array<Pick<ListEntry, 'list' | 'kind' | 'value'>> } | null> {
    const ch = await this.store.setChanges(ENTRIES_KEY, since, max);
    if (!ch) return null;
    const added: ListEntry[] = [];
    const removed: Array<Pick<ListEntry, 'list' | 'kind' | 'value'>> = [];
    for (const c of ch.changes) {
      const e = c.entry ? decodeEntry(c.member, c.entry.value, c.entry.expiresAt) : null;
      if (e) added.push(e);
      else {
        const gone = decodeEntry(c.member, '', null);
        if (gone) removed.push({ list: gone.list, kind: gone.kind, value: gone.value });
      }
    }
    return { version: ch.version, added, removed };
  }

  /**
   * Block a client address or range for `ttlSec` seconds (for shield.auth, shield.limit and other
   * plugins). The entry lands in the shared store, so every node enforces it, and expires by itself.
   */
  async blockTemporarily(ip: string, ttlSec: number, reason: string, source: string): Promise<void> {
    if (!(ttlSec > 0)) throw new Error('blockTemporarily needs a positive ttl');
    await this.add({ list: 'block', kind: 'ip', value: parseCidr(ip).cidr, ttlSec, reason, source });
  }

  /** tell this process's listeners (the store moved the version itself) */
  private changed(): void {
    for (const fn of this.listeners) {
      try {
        fn();
      } catch {
        /* a listener's fault is its own */
      }
    }
  }
}
