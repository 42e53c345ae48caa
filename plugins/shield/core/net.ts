/**
 * IP address and CIDR handling for the suite, on top of ipaddr.js. IPv4-mapped IPv6 addresses
 * (::ffff:192.0.2.1) are always treated as the IPv4 address they carry.
 */
import { domainToASCII } from 'node:url';
import ipaddr from 'ipaddr.js';

export type Family = 4 | 6;

export interface ParsedIp {
  readonly family: Family;
  readonly bytes: readonly number[];
  /** canonical text: dotted quad, or RFC 5952 IPv6 */
  readonly text: string;
}

export interface Cidr extends ParsedIp {
  readonly prefix: number;
  /** canonical "network/prefix" */
  readonly cidr: string;
}

/** Parse an IP address (IPv4, IPv6, IPv4-mapped IPv6 -> IPv4, optional [brackets] or IPv6: tag). */
const DOTTED_QUAD = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

export function parseIp(input: string): ParsedIp | null {
  let s = input.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (/^ipv6:/i.test(s)) s = s.slice(5);
  // IPv4: only the four-part decimal form; legacy forms like "10", "0x0a.1" or "010.1.1.1" are not
  // addresses a mail server should accept. Parsed here: ipaddr.js takes microseconds per call.
  if (!s.includes(':')) {
    const q = DOTTED_QUAD.exec(s);
    if (!q) return null;
    const bytes = [Number(q[1]), Number(q[2]), Number(q[3]), Number(q[4])];
    return bytes.every((x) => x <= 255) ? { family: 4, bytes, text: s } : null;
  }
  // zone ids have no meaning for mail policy
  s = s.replace(/%.*$/, '');
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.IPv6.parse(s);
  } catch {
    return null;
  }
  if (addr.isIPv4MappedAddress()) addr = addr.toIPv4Address();
  const family: Family = addr.kind() === 'ipv4' ? 4 : 6;
  return { family, bytes: addr.toByteArray(), text: addr.toString() };
}

function maskBytes(bytes: readonly number[], prefix: number): number[] {
  const out = bytes.slice();
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = (out[i] as number) & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

function bytesToText(bytes: readonly number[]): string {
  return ipaddr.fromByteArray(bytes as number[]).toString();
}

/**
 * Parse "192.0.2.0/24", "2001:db8::/32" or a bare address (one host: /32 or /128, never more).
 * Host bits set below the prefix ("192.0.2.5/24") are an error: the writer meant something else.
 */
export function parseCidr(input: string): Cidr {
  const text = input.trim();
  const slash = text.indexOf('/');
  const ipPart = slash === -1 ? text : text.slice(0, slash);
  const ip = parseIp(ipPart);
  if (!ip) throw new Error(`"${text}" is not an IP address or CIDR range`);
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) throw new Error(`"${text}": bad prefix length`);
    prefix = Number(p);
    // an IPv4-mapped IPv6 range is written with an IPv6 prefix length
    if (ip.family === 4 && ipPart.includes(':')) prefix -= 96;
    if (prefix < 0 || prefix > max) throw new Error(`"${text}": prefix length must be 0..${max}`);
  }
  const masked = maskBytes(ip.bytes, prefix);
  if (masked.some((b, i) => b !== ip.bytes[i])) {
    throw new Error(`"${text}" has host bits set; did you mean ${bytesToText(masked)}/${prefix}?`);
  }
  return { ...ip, prefix, cidr: `${ip.text}/${prefix}` };
}

/**
 * A set of CIDR ranges with longest-prefix match. Ranges are kept in one hash map per prefix length,
 * so a lookup costs one masked-key hash probe per distinct prefix length in use (at most 33 / 129),
 * whatever the number of entries. IPv4 keys are integers, IPv6 keys short strings.
 */
export class IpSet<V = true> {
  private readonly byLen: Record<Family, Map<number, Map<number | string, { cidr: string; value: V }>>> = { 4: new Map(), 6: new Map() };
  private lens: Record<Family, number[]> = { 4: [], 6: [] };
  private count = 0;

  static of(cidrs: Iterable<string>): IpSet<true> {
    const set = new IpSet<true>();
    for (const c of cidrs) set.add(c, true);
    return set;
  }

  get size(): number {
    return this.count;
  }

  add(cidrText: string | Cidr, value: V): Cidr {
    const c = typeof cidrText === 'string' ? parseCidr(cidrText) : cidrText;
    let m = this.byLen[c.family].get(c.prefix);
    if (!m) {
      m = new Map();
      this.byLen[c.family].set(c.prefix, m);
      this.lens[c.family] = [...this.byLen[c.family].keys()].sort((a, b) => b - a);
    }
    const key = keyOf(c.family, c.bytes, c.prefix);
    if (!m.has(key)) this.count++;
    m.set(key, { cidr: c.cidr, value });
    return c;
  }

  /** remove a range; true when it was there */
  delete(cidrText: string | Cidr): boolean {
    const c = typeof cidrText === 'string' ? parseCidr(cidrText) : cidrText;
    const m = this.byLen[c.family].get(c.prefix);
    if (!m || !m.delete(keyOf(c.family, c.bytes, c.prefix))) return false;
    this.count--;
    if (m.size === 0) {
      this.byLen[c.family].delete(c.prefix);
      this.lens[c.family] = [...this.byLen[c.family].keys()].sort((a, b) => b - a);
    }
    return true;
  }

  /**
   * The most specific range containing ip (whose value `accept` takes, when given), or null; a
   * string that is not an IP never matches.
   */
  match(ip: string | ParsedIp, accept?: (value: V) => boolean): { cidr: string; value: V } | null {
    const p = typeof ip === 'string' ? parseIp(ip) : ip;
    if (!p) return null;
    const maps = this.byLen[p.family];
    for (const len of this.lens[p.family]) {
      const hit = (maps.get(len) as Map<number | string, { cidr: string; value: V }>).get(keyOf(p.family, p.bytes, len));
      if (hit && (!accept || accept(hit.value))) return hit;
    }
    return null;
  }

  has(ip: string | ParsedIp): boolean {
    return this.match(ip) !== null;
  }
}

/** the key of the first `len` bits: an integer for IPv4, a string of bytes for IPv6 */
function keyOf(family: Family, bytes: readonly number[], len: number): number | string {
  if (family === 4) {
    const n = (((bytes[0] as number) << 24) | ((bytes[1] as number) << 16) | ((bytes[2] as number) << 8) | (bytes[3] as number)) >>> 0;
    return len === 0 ? 0 : Math.floor(n / 2 ** (32 - len));
  }
  return String.fromCharCode(...maskBytes(bytes, len));
}

/** The list item converter for config: validates a CIDR and returns its canonical form. */
export function cidrItem(text: string): string {
  return parseCidr(text).cidr;
}

export interface HostnameOptions {
  /** admit "_" in labels, as real host names, HELOs, PTR records and DNS zones have them (default: letters, digits and hyphens only) */
  readonly underscore?: boolean;
  /** read an address literal ("[192.0.2.1]", "[IPv6:2001:db8::1]") as "[canonical ip]" instead of refusing it (relay's accepted domains) */
  readonly addressLiteral?: boolean;
  /**
   * false: any name as DNS carries it (the resolver's questions and answers): only surrounding space,
   * case and the final dot are normalised, no IDN conversion, never null
   */
  readonly validate?: boolean;
}

/**
 * The suite's one host and domain name normaliser: the form every check compares. Lower case,
 * A-labels (IDN), no final dot; null when it is not a usable name (address literals included,
 * unless `addressLiteral`). See HostnameOptions for what each caller may relax.
 */
export function normalizeHostname(input: string, opts: HostnameOptions & { readonly validate: false }): string;
export function normalizeHostname(input: string, opts?: HostnameOptions): string | null;
export function normalizeHostname(input: string, opts: HostnameOptions = {}): string | null {
  const t = input.trim();
  if (opts.addressLiteral && t.startsWith('[')) {
    const ip = t.endsWith(']') ? parseIp(t) : null;
    return ip ? `[${ip.text}]` : null;
  }
  let d = t.toLowerCase();
  if (d.endsWith('.')) d = d.slice(0, -1);
  if (opts.validate === false) return d;
  if (!d || d.length > 253 || d.startsWith('[')) return null;
  // only IDN needs the (slow) URL machinery
  const ascii = /^[\x21-\x7e]*$/.test(d) ? d : domainToASCII(d);
  if (!ascii) return null;
  const label = opts.underscore ? /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/ : /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
  return ascii.split('.').every((l) => label.test(l)) ? ascii : null;
}
