/**
 * Connection and rate limits: which limits apply to a client, the store keys they count in, and
 * the per-CIDR overrides. Pure; the counting itself is the store's atomic `admit`.
 *
 * Keys (under the suite prefix):
 *   limit:conc:ip:<ip|ipv6 /64>    leases of open connections of one client   (TTL 2 x lease_refresh)
 *   limit:conc:net:<cidr>          leases of open connections of a netblock
 *   limit:conc:total               leases of every open connection of the fleet
 *   limit:rate:<name>:<subject>    GCRA timestamp of one rate                  (TTL: time to drain)
 */
import type { Rate } from '../core/config';
import { parseRate } from '../core/config';
import { IpSet, parseCidr, type ParsedIp } from '../core/net';
import type { LeaseSpec, RateSpec } from '../core/store';

export const COUNT_LIMITS = ['conc_node', 'conc_ip', 'conc_net', 'conc_total', 'max_rcpts', 'max_rcpts_relay', 'max_mails', 'max_mails_relay', 'max_unrecognized', 'max_errors'] as const;
export const RATE_LIMITS = ['conn_ip', 'conn_net', 'daily_ip', 'msg_ip', 'msg_sender_domain', 'msg_user', 'rcpt_ip', 'rcpt_sender_domain', 'rcpt_user'] as const;
export type CountLimit = (typeof COUNT_LIMITS)[number];
export type RateLimit = (typeof RATE_LIMITS)[number];

/** the limits in force for one client: a count (0 = none) or a rate (null = none) per name */
export type Limits = { readonly [K in CountLimit]: number } & { readonly [K in RateLimit]: Rate | null };

/** "conc_ip=50 rcpt_ip=1000/1h msg_ip=off" -> a partial Limits; throws on an unknown name or bad value */
export function parseOverride(text: string): Partial<Limits> {
  const out: Record<string, number | Rate | null> = {};
  for (const pair of text.trim().split(/\s+/).filter(Boolean)) {
    const m = /^([a-z_]+)=(.+)$/.exec(pair);
    if (!m) throw new Error(`"${pair}": write name=value`);
    const [, name, value] = m as unknown as [string, string, string];
    if ((COUNT_LIMITS as readonly string[]).includes(name)) {
      if (value === 'off') out[name] = 0;
      else if (/^\d+$/.test(value)) out[name] = Number(value);
      else throw new Error(`"${pair}": ${name} takes a number or off`);
    } else if ((RATE_LIMITS as readonly string[]).includes(name)) {
      out[name] = value === 'off' ? null : parseRate(value);
    } else {
      throw new Error(`"${pair}": unknown limit ${name} (one of ${[...COUNT_LIMITS, ...RATE_LIMITS].join(', ')})`);
    }
  }
  if (Object.keys(out).length === 0) throw new Error('no limit given');
  return out as Partial<Limits>;
}

/** Overrides by client CIDR: the most specific range that lists a limit decides it. */
export class Overrides {
  private readonly set = new IpSet<Partial<Limits>>();

  add(cidr: string, limits: Partial<Limits>): void {
    this.set.add(cidr, limits);
  }

  get size(): number {
    return this.set.size;
  }

  apply(base: Limits, ip: ParsedIp): Limits {
    const hit = this.set.match(ip);
    return hit ? Object.freeze({ ...base, ...hit.value }) : base;
  }
}

/** one overrides file line: "CIDR name=value ..." */
export function parseOverrideLine(text: string): { cidr: string; limits: Partial<Limits> } {
  const [cidr, ...rest] = text.trim().split(/\s+/);
  return { cidr: parseCidr(cidr as string).cidr, limits: parseOverride(rest.join(' ')) };
}

/** the address a client is counted as: IPv4 itself, IPv6 its /prefix (one host usually owns a /64) */
export function clientSubject(ip: ParsedIp, ipv6Prefix: number): string {
  return ip.family === 4 ? ip.text : netSubject(ip, 32, ipv6Prefix);
}

/** the netblock of a client: "198.51.100.0/24", "2001:db8::/48" */
export function netSubject(ip: ParsedIp, v4Prefix: number, v6Prefix: number): string {
  const prefix = ip.family === 4 ? v4Prefix : v6Prefix;
  const bytes = ip.bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    return b & ((0xff << (8 - bits)) & 0xff);
  });
  const text = ip.family === 4 ? bytes.join('.') : parseCidrText(bytes);
  return `${text}/${prefix}`;
}

function parseCidrText(bytes: number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
  // canonical form through the suite's parser (RFC 5952 compression)
  return parseCidr(groups.join(':')).text;
}

export interface ConnectPlan {
  readonly leases: LeaseSpec[];
  readonly rates: RateSpec[];
  /** the limit name of each lease and rate, in order, for the reply */
  readonly names: string[];
}

export interface ClientScope {
  readonly ip: ParsedIp;
  readonly limits: Limits;
  /** per-IP and per-netblock limits do not apply (relay clients) */
  readonly exemptClient: boolean;
  readonly ipv6Prefix: number;
  readonly netV4: number;
  readonly netV6: number;
}

/** What a new connection must be admitted by (the node-local count is the plugin's own). */
export function connectPlan(c: ClientScope): ConnectPlan {
  const leases: LeaseSpec[] = [];
  const rates: RateSpec[] = [];
  const names: string[] = [];
  const subject = clientSubject(c.ip, c.ipv6Prefix);
  const net = netSubject(c.ip, c.netV4, c.netV6);
  const lease = (name: string, key: string, max: number) => {
    if (max > 0) {
      leases.push({ key, max });
      names.push(name);
    }
  };
  if (!c.exemptClient) {
    lease('conc_ip', `limit:conc:ip:${subject}`, c.limits.conc_ip);
    lease('conc_net', `limit:conc:net:${net}`, c.limits.conc_net);
  }
  lease('conc_total', 'limit:conc:total', c.limits.conc_total);
  const rate = (name: RateLimit, subj: string) => {
    const r = c.limits[name];
    if (!r) return;
    rates.push({ key: `limit:rate:${name}:${subj}`, limit: r.limit, windowSec: r.windowSec });
    names.push(name);
  };
  if (!c.exemptClient) {
    rate('conn_ip', subject);
    rate('conn_net', net);
    rate('daily_ip', subject);
  }
  // names: the leases' first, then the rates', as admit() indexes a refusal
  return { leases, rates, names };
}

export interface TransactionScope {
  readonly limits: Limits;
  readonly clientSubject: string;
  /** per-IP rates do not apply: relay clients, and authenticated users (who have per-user rates) */
  readonly exemptIp: boolean;
  /** the envelope sender's domain as claimed (null: the null sender, or a domain not to count) */
  readonly senderDomain: string | null;
  readonly user: string | null;
}

/**
 * The sender domain the per-domain rates count: null for the null sender and for a domain on the
 * exempt list (or a subdomain of one). The domain is the client's claim, not verified: see
 * msg_sender_domain in the docs.
 */
export function countedSenderDomain(domain: string | null, exempt: readonly string[]): string | null {
  if (!domain) return null;
  return exempt.some((e) => domain === e || domain.endsWith(`.${e}`)) ? null : domain;
}

/**
 * The Nth MAIL command of a connection (counted from 1) against max_mails / max_mails_relay:
 * the limit's name when it is over, or null (0 = no limit).
 */
export function mailCountOver(count: number, limits: Limits, privileged: boolean): 'max_mails' | 'max_mails_relay' | null {
  const name = privileged ? 'max_mails_relay' : 'max_mails';
  const max = limits[name];
  return max > 0 && count > max ? name : null;
}

/** the rates a MAIL (kind msg) or RCPT (kind rcpt) counts against */
export function transactionRates(kind: 'msg' | 'rcpt', t: TransactionScope): { rates: RateSpec[]; names: string[] } {
  const rates: RateSpec[] = [];
  const names: string[] = [];
  const add = (name: RateLimit, subject: string | null) => {
    const r = t.limits[name];
    if (!r || subject === null) return;
    rates.push({ key: `limit:rate:${name}:${subject}`, limit: r.limit, windowSec: r.windowSec });
    names.push(name);
  };
  if (!t.exemptIp) add(`${kind}_ip`, t.clientSubject);
  add(`${kind}_sender_domain`, t.senderDomain);
  add(`${kind}_user`, t.user);
  return { rates, names };
}

/** "30 per 1m" for a reply */
export function describeRate(r: Rate): string {
  const w = r.windowSec;
  const unit = w % 86400 === 0 ? `${w / 86400}d` : w % 3600 === 0 ? `${w / 3600}h` : w % 60 === 0 ? `${w / 60}m` : `${w}s`;
  return `${r.limit} per ${unit}`;
}
