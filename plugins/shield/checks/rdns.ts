/**
 * Reverse DNS and HELO checks. Pure: DNS comes in through `deps`, results go out as evidence.
 *
 *   rdns.ptr            the client address has a PTR record
 *   rdns.fcrdns         a PTR name resolves (A/AAAA) back to the address (forward-confirmed rDNS)
 *   rdns.generic        the PTR name looks dynamic/generic (embeds the address, or a pool word)
 *   helo.syntax         the HELO is an FQDN under a public suffix, or an address literal
 *   helo.literal        an address literal is the client's own address
 *   helo.impersonation  the HELO is not our name, one of our domains or one of our addresses
 *   helo.match          the HELO resolves to the client, or shares the registered domain of its
 *                       confirmed rDNS name; err when either answer is missing (the HELO's own
 *                       lookup failed, or the rDNS it could have matched is unknown)
 * DNS faults are `err` outcomes (never a fail), and so is evidence that needs an answer that did
 * not come; the caller's policy defers or skips them.
 */
import { parse as parseDomain } from 'tldts';
import { errorMessage } from '../core/errors';
import { normalizeHostname, parseIp, type ParsedIp } from '../core/net';
import { reply, type Reply } from '../core/policy';
import type { Evidence } from '../core/results';

export interface PtrResult {
  readonly status: 'ok' | 'nxdomain' | 'nodata' | 'error';
  readonly names: readonly string[];
}

export interface FcrdnsResult {
  /** RFC 8601 iprev result */
  readonly iprev: 'pass' | 'fail' | 'temperror';
  /** the first PTR name that resolves back to the address */
  readonly confirmed: string | null;
  /** PTR names as found (normalised), at most the cap */
  readonly names: readonly string[];
  /** names whose forward lookup failed on a DNS fault */
  readonly errors: readonly string[];
}

export interface RdnsDeps {
  /** does `name` resolve to `ip`? throws on a DNS fault */
  forwardConfirms(name: string, ip: ParsedIp): Promise<boolean>;
}

/**
 * Follow up to `maxNames` PTR names forward, in parallel. Pass when one confirms; temperror when
 * none confirms and a lookup failed (or the PTR lookup itself failed); fail otherwise.
 */
export async function fcrdns(ip: ParsedIp, ptr: PtrResult, deps: RdnsDeps, maxNames: number): Promise<FcrdnsResult> {
  if (ptr.status === 'error') return { iprev: 'temperror', confirmed: null, names: [], errors: [] };
  const names = [...new Set(ptr.names.map((n) => normalizeHostname(n, { underscore: true })).filter((n): n is string => n !== null))].slice(0, maxNames);
  const errors: string[] = [];
  const ok = await Promise.all(
    names.map((n) =>
      deps.forwardConfirms(n, ip).catch(() => {
        errors.push(n);
        return false;
      }),
    ),
  );
  const confirmed = names.find((_, i) => ok[i]) ?? null;
  const iprev = confirmed ? 'pass' : errors.length ? 'temperror' : 'fail';
  return { iprev, confirmed, names, errors };
}

/** Evidence for rdns.ptr and rdns.fcrdns from one FCrDNS result. */
export function rdnsEvidence(ip: string, ptr: PtrResult, r: FcrdnsResult): Evidence[] {
  if (ptr.status === 'error') return [{ check: 'rdns.ptr', outcome: 'err', reason: 'dns_error', data: { ip } }];
  if (r.names.length === 0) return [{ check: 'rdns.ptr', outcome: 'fail', reason: 'no_ptr', data: { ip, status: ptr.status } }];
  const ptrEv: Evidence = { check: 'rdns.ptr', outcome: 'pass', reason: 'has_ptr', data: { ip, names: r.names } };
  if (r.confirmed) return [ptrEv, { check: 'rdns.fcrdns', outcome: 'pass', reason: 'confirmed', data: { ip, name: r.confirmed } }];
  if (r.errors.length) return [ptrEv, { check: 'rdns.fcrdns', outcome: 'err', reason: 'dns_error', data: { ip, names: r.errors } }];
  return [ptrEv, { check: 'rdns.fcrdns', outcome: 'fail', reason: 'not_confirmed', data: { ip, names: r.names } }];
}

/** words that mark a host name as a dynamic or generic access address (matched as whole labels or label parts) */
export const DEFAULT_GENERIC_PATTERNS: readonly string[] = [
  '(^|[.-])(dyn|dynamic|dynip|dhcp|pool|dial|dialup|dialin|ppp|pppoe|dsl|adsl|vdsl|xdsl|cable|cust|customer|client|broadband|bb|fibre|fiber|ftth|unassigned|nat)[0-9]*([.-]|$)',
];

export function compilePattern(src: string): RegExp {
  try {
    return new RegExp(src, 'i');
  } catch (err) {
    throw new Error(`"${src}" is not a valid regular expression (${errorMessage(err)})`);
  }
}

/** Does `name` embed the address (IPv4 octets in either order, with or without separators, or as hex)? */
export function embedsAddress(name: string, ip: ParsedIp): boolean {
  if (ip.family !== 4) {
    // the interface identifier (last 64 bits) as hex groups, as ISPs write them: "dead-beef-0-7"
    const groups: string[] = [];
    for (let i = 8; i < 16; i += 2) groups.push((((ip.bytes[i] as number) << 8) | (ip.bytes[i + 1] as number)).toString(16));
    const re = new RegExp(`(^|[^0-9a-f])${groups.map((g) => `0{0,3}${g}`).join('[-._]?')}([^0-9a-f]|$)`);
    return re.test(name.toLowerCase());
  }
  const o = ip.bytes.map(String);
  const hex = ip.bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
  const flat = name.toLowerCase();
  if (flat.includes(hex)) return true;
  for (const seq of [o, [...o].reverse()]) {
    // separators between octets: ".", "-", "_", "x" or none; octets may be zero-padded
    const re = new RegExp(`(^|[^0-9])${seq.map((x) => `0{0,2}${x}`).join('[-._x]?')}([^0-9]|$)`);
    if (re.test(flat)) return true;
  }
  return false;
}

export function genericEvidence(name: string, ip: ParsedIp, patterns: readonly RegExp[]): Evidence {
  if (embedsAddress(name, ip)) return { check: 'rdns.generic', outcome: 'fail', reason: 'embeds_address', data: { name } };
  const hit = patterns.find((p) => p.test(name));
  if (hit) return { check: 'rdns.generic', outcome: 'fail', reason: 'dynamic_word', data: { name, pattern: hit.source } };
  return { check: 'rdns.generic', outcome: 'pass', reason: 'specific', data: { name } };
}

export type HeloForm = { kind: 'literal'; ip: ParsedIp; text: string } | { kind: 'name'; name: string } | { kind: 'invalid'; reason: string };

/**
 * Read a HELO argument: an address literal ("[192.0.2.1]", "[IPv6:2001:db8::1]") or a host name.
 * A bare IP, a single label, a name under an unknown suffix, or junk is `invalid` with a reason.
 */
export function heloForm(helo: string): HeloForm {
  const h = helo.trim();
  if (!h) return { kind: 'invalid', reason: 'empty' };
  if (h.startsWith('[') && h.endsWith(']')) {
    const inner = h.slice(1, -1);
    const ip = parseIp(inner);
    // RFC 5321 4.1.3: an IPv6 literal carries the "IPv6:" tag
    if (!ip || (inner.includes(':') && !/^ipv6:/i.test(inner))) return { kind: 'invalid', reason: 'bad_literal' };
    return { kind: 'literal', ip, text: h };
  }
  if (parseIp(h)) return { kind: 'invalid', reason: 'bare_ip' };
  const name = normalizeHostname(h, { underscore: true });
  if (!name) return { kind: 'invalid', reason: 'bad_characters' };
  if (!name.includes('.')) return { kind: 'invalid', reason: 'not_fqdn' };
  const p = parseDomain(name);
  if (!p.isIcann || !p.domain) return { kind: 'invalid', reason: 'no_public_suffix' };
  return { kind: 'name', name };
}

export interface HeloContext {
  readonly ip: ParsedIp;
  /** is this normalised name one of our host names or local domains? */
  ourName(name: string): boolean;
  /** our addresses, canonical text */
  readonly ourIps: ReadonlySet<string>;
}

/** the checks that need no DNS: syntax, literal, impersonation */
export function heloStaticEvidence(helo: string, ctx: HeloContext): Evidence[] {
  const f = heloForm(helo);
  const data = { helo };
  if (f.kind === 'invalid') return [{ check: 'helo.syntax', outcome: 'fail', reason: f.reason, data }];
  const out: Evidence[] = [{ check: 'helo.syntax', outcome: 'pass', reason: f.kind, data }];
  if (f.kind === 'literal') {
    if (ctx.ourIps.has(f.ip.text)) out.push({ check: 'helo.impersonation', outcome: 'fail', reason: 'our_address', data });
    else out.push({ check: 'helo.literal', outcome: f.ip.text === ctx.ip.text ? 'pass' : 'fail', reason: f.ip.text === ctx.ip.text ? 'matches_client' : 'literal_mismatch', data });
    return out;
  }
  if (ctx.ourName(f.name)) out.push({ check: 'helo.impersonation', outcome: 'fail', reason: 'our_name', data });
  return out;
}

/**
 * helo.match: the HELO name resolves to the client, or shares the registered domain of the
 * confirmed rDNS name (public-suffix aware: mx1.example.co.uk and out.example.co.uk match,
 * a.github.io and b.github.io do not share anything but the suffix). `rdnsUnknown`: the client's
 * rDNS could not be looked up, so a HELO that does not resolve to it is `err`, not a mismatch.
 */
export async function heloMatchEvidence(helo: string, ip: ParsedIp, confirmedRdns: string | null, deps: RdnsDeps, rdnsUnknown = false): Promise<Evidence | null> {
  const f = heloForm(helo);
  if (f.kind !== 'name') return null;
  const data = { helo, rdns: confirmedRdns };
  if (confirmedRdns) {
    const a = parseDomain(f.name, { allowPrivateDomains: true }).domain;
    const b = parseDomain(confirmedRdns, { allowPrivateDomains: true }).domain;
    if (a && a === b) return { check: 'helo.match', outcome: 'pass', reason: 'same_domain_as_rdns', data };
  }
  try {
    if (await deps.forwardConfirms(f.name, ip)) return { check: 'helo.match', outcome: 'pass', reason: 'resolves_to_client', data };
  } catch {
    return { check: 'helo.match', outcome: 'err', reason: 'dns_error', data };
  }
  // the rDNS name that could have matched is unknown (its lookup failed): not a mismatch
  if (rdnsUnknown) return { check: 'helo.match', outcome: 'err', reason: 'rdns_unknown', data };
  return { check: 'helo.match', outcome: 'fail', reason: 'mismatch', data };
}

/**
 * The replies for a failed (reject) or undecidable (defer) check: 5.7.25 for reverse DNS (RFC 7372),
 * 5.7.1 for the HELO; `ip` is the client's address.
 */
export function rdnsReplies(check: string, ev: Evidence, ip: string): { reject: Reply; defer: Reply } {
  const d = (ev.data ?? {}) as { helo?: string; name?: string; names?: string[] };
  const helo = d.helo ?? '';
  const rdns = (text: string) => ({ reject: reply(550, '5.7.25', text), defer: reply(450, '4.7.25', `Cannot verify the reverse DNS of ${ip} right now; please try again later`) });
  const heloR = (text: string) => ({ reject: reply(550, '5.7.1', text), defer: reply(450, '4.7.1', `Cannot verify your HELO name ${helo} right now; please try again later`) });
  switch (check) {
    case 'rdns.ptr':
      return rdns(`Reverse DNS required: ${ip} has no PTR record; ask your provider to set one that resolves back to ${ip}`);
    case 'rdns.fcrdns':
      return rdns(`Reverse DNS of ${ip} (${(d.names ?? []).join(', ')}) does not resolve back to ${ip}`);
    case 'rdns.generic':
      return rdns(`${d.name} looks like a dynamic or generic host name; send through your provider's mail server or set a specific PTR`);
    case 'helo.syntax':
      return heloR(`HELO/EHLO ${helo} is not a fully qualified domain name or an address literal (RFC 5321 4.1.1.1)`);
    case 'helo.literal':
      return heloR(`HELO/EHLO ${helo} is not your address ${ip}`);
    case 'helo.impersonation':
      return heloR(`HELO/EHLO ${helo} is this server's own name or address, and you are not this server`);
    default:
      return heloR(`HELO/EHLO ${helo} does not resolve to ${ip} and does not match your host name`);
  }
}
