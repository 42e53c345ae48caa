/**
 * DNS block and allow lists: what a zone's answer means, and the score. Pure.
 *
 * An answer is read the way postscreen reads one, and more carefully:
 *  - only 127.0.0.0/8 answers can be listings; anything else is a zone error (a wildcard, a
 *    hijacking resolver, a typo in the zone name);
 *  - 127.0.0.1 (the RFC 5782 "not listed" test point, URIBL's "refused"), 127.255.255.0/24 (Spamhaus:
 *    query refused, over quota, public resolver) and each zone's own `errors` are zone errors;
 *  - a zone with `listed` patterns counts only answers that match one; every matching pattern adds
 *    its weight once; a zone without patterns counts any other 127/8 answer with its `weight`.
 * A zone error never counts towards the score and never rejects.
 */
import { parse as parseDomain } from 'tldts';
import { normalizeHostname, parseIp, type ParsedIp } from '../core/net';

export type ZoneType = 'ip' | 'domain' | 'allow';

export interface CodePattern {
  /** "127.0.0.2", "127.0.0.2-127.0.0.11", "127.0.*.3", "bitmask:8" (last octet & 8) */
  readonly match: string;
  readonly label: string;
  readonly weight: number;
  test(code: ParsedIp): boolean;
}

export interface Zone {
  /** the name the operator gave it (its section): what replies and logs show */
  readonly name: string;
  readonly type: ZoneType;
  /** the DNS zone, e.g. zen.spamhaus.org */
  readonly zone: string;
  /** Spamhaus DQS style key, queried as <item>.<key>.<zone>; never shown */
  readonly key: string;
  readonly ipv4: boolean;
  readonly ipv6: boolean;
  readonly listed: readonly CodePattern[];
  readonly errors: readonly CodePattern[];
  /** the weight of a listing when there are no `listed` patterns */
  readonly weight: number;
  readonly tagOnly: boolean;
  /** "https://check.spamhaus.org/listed/?searchterm={item}" */
  readonly lookupUrl: string;
  /** domain zones: which identities are checked */
  readonly identities: ReadonlyArray<'helo' | 'rdns' | 'mail_from'>;
  /** domain zones: query the registered domain (example.co.uk) rather than the full name */
  readonly registeredDomain: boolean;
}

function ipCode(text: string): ParsedIp {
  const ip = parseIp(text);
  if (!ip || ip.family !== 4) throw new Error(`"${text}" is not an IPv4 return code`);
  return ip;
}

function num(ip: ParsedIp): number {
  return ((ip.bytes[0] as number) * 16777216 + (ip.bytes[1] as number) * 65536 + (ip.bytes[2] as number) * 256 + (ip.bytes[3] as number)) >>> 0;
}

/** "127.0.0.2", "127.0.0.2-127.0.0.11", "127.0.*.3" or "bitmask:N", with a label and weight: "127.0.0.2 sbl 1" */
export function parsePattern(text: string, defaults: { label: string; weight: number }): CodePattern {
  const [match, label, weight, ...rest] = text.trim().split(/\s+/);
  if (!match || rest.length) throw new Error(`"${text}": write "<code|from-to|bitmask:N> [label] [weight]"`);
  const w = weight === undefined ? defaults.weight : Number(weight);
  if (!Number.isFinite(w)) throw new Error(`"${text}": weight "${weight}" is not a number`);
  let test: (code: ParsedIp) => boolean;
  const bm = /^bitmask:(\d+)$/.exec(match);
  if (bm) {
    const mask = Number(bm[1]);
    if (mask < 1 || mask > 255) throw new Error(`"${text}": a bitmask is 1..255 (on the last octet)`);
    test = (c) => c.bytes[0] === 127 && ((c.bytes[3] as number) & mask) !== 0;
  } else if (match.includes('*')) {
    // octet wildcards: "127.0.*.3" (DNSWL: any category, trust level 3)
    const parts = match.split('.');
    if (parts.length !== 4 || parts.some((p) => p !== '*' && !(/^\d{1,3}$/.test(p) && Number(p) <= 255))) throw new Error(`"${text}": "${match}" is not a code pattern`);
    test = (c) => parts.every((p, i) => p === '*' || Number(p) === c.bytes[i]);
  } else if (match.includes('-')) {
    const [a, b] = match.split('-').map(ipCode) as [ParsedIp, ParsedIp];
    const lo = num(a);
    const hi = num(b);
    if (lo > hi) throw new Error(`"${text}": the range runs backwards`);
    test = (c) => num(c) >= lo && num(c) <= hi;
  } else {
    const n = num(ipCode(match));
    test = (c) => num(c) === n;
  }
  return { match, label: label ?? defaults.label, weight: w, test };
}

const ALWAYS_ERRORS = ['127.0.0.1', '127.255.255.0-127.255.255.255'].map((m) => parsePattern(m, { label: 'error', weight: 0 }));

export type ZoneOutcome =
  | { readonly status: 'listed'; readonly codes: readonly string[]; readonly labels: readonly string[]; readonly weight: number }
  | { readonly status: 'clean' }
  | { readonly status: 'error'; readonly why: string }
  /** not asked: the item cannot be a query in this zone (e.g. too long with the zone appended) */
  | { readonly status: 'skip'; readonly why: string };

/** What one zone's A records for one item mean. */
export function classify(zone: Zone, codes: readonly string[]): ZoneOutcome {
  if (codes.length === 0) return { status: 'clean' };
  const parsed: ParsedIp[] = [];
  for (const c of codes) {
    const ip = parseIp(c);
    if (!ip || ip.family !== 4 || ip.bytes[0] !== 127) return { status: 'error', why: `answer ${c} is outside 127.0.0.0/8` };
    if (ALWAYS_ERRORS.some((p) => p.test(ip)) || zone.errors.some((p) => p.test(ip))) return { status: 'error', why: `answer ${c} is an error code` };
    parsed.push(ip);
  }
  if (zone.listed.length === 0) return { status: 'listed', codes, labels: [], weight: zone.weight };
  const hits = zone.listed.filter((p) => parsed.some((c) => p.test(c)));
  if (hits.length === 0) return { status: 'error', why: `answer ${codes.join(',')} matches none of the zone's codes` };
  return { status: 'listed', codes, labels: [...new Set(hits.map((h) => h.label))], weight: hits.reduce((s, h) => s + h.weight, 0) };
}

/** The label to query for an IP: reversed octets, or reversed nibbles for IPv6 (RFC 5782). */
export function ipQueryLabel(ip: ParsedIp): string {
  if (ip.family === 4) return [...ip.bytes].reverse().join('.');
  const nibbles: string[] = [];
  for (const b of ip.bytes) nibbles.push((b >> 4).toString(16), (b & 15).toString(16));
  return nibbles.reverse().join('.');
}

/** the full query name; the key (DQS) sits between the item and the zone */
export function queryName(zone: Zone, item: string): string {
  return zone.key ? `${item}.${zone.key}.${zone.zone}` : `${item}.${zone.zone}`;
}

/** The name a domain zone is asked about for one identity, or null when there is nothing to ask. */
export function domainItem(zone: Zone, name: string | null): string | null {
  if (!name) return null;
  const n = normalizeHostname(name, { underscore: true });
  if (!n || !n.includes('.') || parseIp(n)) return null;
  if (!zone.registeredDomain) return n;
  return parseDomain(n).domain ?? null;
}

export interface ZoneResult {
  readonly zone: Zone;
  /** what was asked about: the IP text or the domain */
  readonly item: string;
  readonly identity: 'ip' | 'helo' | 'rdns' | 'mail_from';
  readonly outcome: ZoneOutcome;
}

export interface Score {
  readonly score: number;
  /** zones that counted (listed, not tag-only), with their labels */
  readonly listings: readonly ZoneResult[];
  /** tag-only zones that listed the client */
  readonly tags: readonly ZoneResult[];
  readonly errors: readonly ZoneResult[];
}

export function score(results: readonly ZoneResult[]): Score {
  let total = 0;
  const listings: ZoneResult[] = [];
  const tags: ZoneResult[] = [];
  const errors: ZoneResult[] = [];
  for (const r of results) {
    if (r.outcome.status === 'error') errors.push(r);
    if (r.outcome.status !== 'listed') continue;
    if (r.zone.tagOnly) {
      tags.push(r);
      continue;
    }
    total += r.outcome.weight;
    listings.push(r);
  }
  return { score: total, listings, tags, errors };
}

/** "zen (sbl,xbl) https://check.spamhaus.org/...; bl.spamcop.net" — never the DQS key */
export function describeListings(listings: readonly ZoneResult[]): string {
  return listings
    .filter((l) => l.outcome.status === 'listed' && l.outcome.weight > 0)
    .map((l) => {
      const labels = l.outcome.status === 'listed' && l.outcome.labels.length ? ` (${l.outcome.labels.join(',')})` : '';
      const url = l.zone.lookupUrl ? ` ${l.zone.lookupUrl.replace('{item}', encodeURIComponent(l.item))}` : '';
      return `${l.zone.name}${labels}${url}`;
    })
    .join('; ');
}

/** who is listed, as a reply names it: the IP itself, or which name of the client */
function identityText(r: ZoneResult, ip: string): string {
  if (r.identity === 'ip') return ip;
  if (r.identity === 'helo') return `the HELO name ${r.item}`;
  if (r.identity === 'rdns') return `the host name ${r.item}`;
  return `the sender domain ${r.item}`;
}

/** the refusal's text: "192.0.2.1 is listed by zen (sbl) https://...; the HELO name x.example is listed by dbl" */
export function listingText(listings: readonly ZoneResult[], ip: string): string {
  const byItem = new Map<string, ZoneResult[]>();
  for (const l of listings.filter((x) => x.outcome.status === 'listed' && x.outcome.weight > 0)) {
    const k = identityText(l, ip);
    byItem.set(k, [...(byItem.get(k) ?? []), l]);
  }
  return [...byItem].map(([who, ls]) => `${who} is listed by ${describeListings(ls)}`).join('; ');
}

/** the zones that listed something, with their labels, for the evidence: ["zen(sbl,xbl)", "spamcop"] */
export function listedZones(s: Score): string[] {
  return [...s.listings, ...s.tags].map((l) => `${l.zone.name}${l.outcome.status === 'listed' && l.outcome.labels.length ? `(${l.outcome.labels.join(',')})` : ''}`);
}

/**
 * A zone's health from the answers for its test points (undefined: that point is not probed; null:
 * the query failed). A zone must not list the "never listed" point (a zone that does lists
 * everything, or refuses us with 127.255.255.x) and must list the "always listed" one.
 */
export function healthVerdict(
  zone: Zone,
  points: { readonly listed: string; readonly unlisted: string },
  answers: { readonly listed: readonly string[] | null | undefined; readonly unlisted: readonly string[] | null | undefined },
): { ok: boolean; why: string } {
  const { listed, unlisted } = answers;
  if (listed !== undefined && unlisted !== undefined && listed === null && unlisted === null) return { ok: false, why: 'it does not answer (both test points timed out or failed)' };
  if (unlisted && unlisted.length > 0) return { ok: false, why: `it lists the test point ${points.unlisted}, which no zone lists (it lists everything, or refuses our queries: ${unlisted.join(',')})` };
  if (listed !== undefined && (listed === null || classify(zone, listed).status !== 'listed')) {
    return { ok: false, why: `it does not list its test point ${points.listed}${listed && listed.length ? ` (answered ${listed.join(',')})` : ''}` };
  }
  return { ok: true, why: '' };
}
