/**
 * Block and allow entries as the whole suite sees them: what an entry is, how its text is read, and
 * the shared part of the lists that lives in the store (Redis for a fleet), which the CLI manages and
 * other plugins add to (`blockTemporarily`, e.g. shield.auth after a brute-force attack).
 *
 * Store layout (keys under the suite prefix):
 *   blocklist:entries   a store set: member "<list>|<kind>|<value>", value JSON {reason, source, added}
 *                       with the entry's own expiry (sorted set :exp + hash :val in Redis)
 *   blocklist:version   a counter bumped (by a random step) by every change, so nodes reload only
 *                       when something changed
 */
import { parseLines } from './config';
import { randomInt } from 'node:crypto';
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
export const VERSION_KEY = 'blocklist:version';
/** the version counter must outlive any entry; the store requires a TTL on counters */
const VERSION_TTL_SEC = 10 * 365 * 86400;

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

/** Read one entry's text: the kind from `kind` when given, else guessed (IP/CIDR, address, domain). */
export function parseEntryValue(text: string, kind?: EntryKind): { kind: EntryKind; value: string } {
  const t = text.trim();
  if (!t) throw new Error('empty entry');
  if (/^\*?\.\S/.test(t)) throw new Error(`"${t}": write the domain without "*." or a leading dot; a domain entry already covers its subdomains`);
  const looksIp = parseIp(t.split('/')[0] as string) !== null;
  const k: EntryKind = kind ?? (looksIp ? 'ip' : t.includes('@') ? 'sender' : 'domain');
  switch (k) {
    case 'ip':
      return { kind: k, value: parseCidr(t).cidr };
    case 'domain': {
      if (looksIp) throw new Error(`"${t}" is an IP address; use an ip entry`);
      const d = normalizeHostname(t, { underscore: true });
      if (!d) throw new Error(`"${t}" is not a host or domain name`);
      return { kind: k, value: d };
    }
    case 'sender':
    case 'rcpt': {
      if (t.startsWith('@')) {
        const d = normalizeHostname(t.slice(1), { underscore: true });
        if (!d) throw new Error(`"${t}" is not a domain name`);
        return { kind: k, value: d };
      }
      if (t.includes('@')) {
        const a = normalizeAddress(t);
        if (!a) throw new Error(`"${t}" is not an email address`);
        return { kind: k, value: a };
      }
      const d = normalizeHostname(t, { underscore: true });
      if (!d || looksIp) throw new Error(`"${t}" is not an email address or domain name`);
      return { kind: k, value: d };
    }
  }
}

const KIND_PREFIX = /^(ip|domain|sender|rcpt):(?!:)/;

/** One list line without its comment: `[kind:]entry [reason text]`. */
export function parseListLine(text: string): { kind: EntryKind; value: string; reason: string } {
  const m = /^(\S+)(?:\s+(.*))?$/.exec(text.trim());
  if (!m) throw new Error('empty entry');
  let entry = m[1] as string;
  let kind: EntryKind | undefined;
  const km = KIND_PREFIX.exec(entry);
  if (km) {
    kind = km[1] as EntryKind;
    entry = entry.slice(km[0].length);
  }
  return { ...parseEntryValue(entry, kind), reason: (m[2] ?? '').trim() };
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
 * The entries of the block and allow files named in shield.blocklist.ini, read through Haraka's
 * config (so `onChange` fires when a file changes). Bad lines go to `onBad` and are skipped.
 */
export function readListFiles(
  config: HarakaConfig,
  files: { readonly block_file: string; readonly allow_file: string },
  onBad: (file: string, lineNo: number, message: string) => void,
  onChange?: () => void,
): ListEntry[] {
  let out: ListEntry[] = [];
  for (const [list, file] of [
    ['block', files.block_file],
    ['allow', files.allow_file],
  ] as Array<[ListName, string]>) {
    if (!file) continue;
    const lines = ((onChange ? config.get(file, 'data', onChange) : config.get(file, 'data')) as string[] | null) ?? [];
    // concat, not push(...): a list may hold hundreds of thousands of entries
    out = out.concat(listFileEntries(file, list, lines, (n, msg) => onBad(file, n, msg)));
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
    await this.bump();
  }

  async remove(list: ListName, kind: EntryKind, value: string): Promise<boolean> {
    const had = await this.store.setDelete(ENTRIES_KEY, memberOf(list, kind, value));
    if (had) await this.bump();
    return had;
  }

  async entries(): Promise<ListEntry[]> {
    const out: ListEntry[] = [];
    for (const s of await this.store.setEntries(ENTRIES_KEY)) {
      const e = decodeEntry(s.member, s.value, s.expiresAt);
      if (e) out.push(e);
    }
    return out;
  }

  version(): Promise<number> {
    return this.store.getCount(VERSION_KEY);
  }

  /**
   * Block a client address or range for `ttlSec` seconds (for shield.auth, shield.limit and other
   * plugins). The entry lands in the shared store, so every node enforces it, and expires by itself.
   */
  async blockTemporarily(ip: string, ttlSec: number, reason: string, source: string): Promise<void> {
    if (!(ttlSec > 0)) throw new Error('blockTemporarily needs a positive ttl');
    await this.add({ list: 'block', kind: 'ip', value: parseCidr(ip).cidr, ttlSec, reason, source });
  }

  private async bump(): Promise<void> {
    // a random step: nodes compare versions for equality, and a Redis that restarted empty must not
    // count back up to a version a node already holds
    await this.store.incr(VERSION_KEY, 1 + randomInt(1_000_000), VERSION_TTL_SEC);
    for (const fn of this.listeners) {
      try {
        fn();
      } catch {
        /* a listener's fault is its own */
      }
    }
  }
}
