/**
 * shield.dnsbl.ini: the schema (for the plugin and `haraka-shield config`) and its parsing into the
 * zones the engine uses. Pure: the raw ini comes in, a typed config comes out; errors name file,
 * section and key.
 */
import { f, parseConfig, type SchemaOf } from '../core/config';
import { ConfigError, errorMessage } from '../core/errors';
import { normalizeHostname } from '../core/net';
import { parsePattern, type Zone } from './dnsbl';

export const DNSBL_FILE = 'shield.dnsbl.ini';

const MAIN = {
  zones: f.list([], 'the zones in use, by section name, e.g. "zones = zen, spamcop, dnswl"'),
  threshold: f.num(1, 'reject when the weights of the listing zones add up to this or more'),
  enforce_at: f.oneOf(['rcpt', 'connect'] as const, 'rcpt', 'rcpt: refuse each recipient (postmaster@ and abuse@ of our domains and authenticated users exempt, sender and recipient in the log); connect: refuse at once with 554'),
  exempt_private: f.bool(true, 'skip private, loopback and link-local clients'),
  cache_min_ttl: f.duration(60, 'shortest time an answer stays in the shared cache', { min: 0 }),
  cache_max_ttl: f.duration(3600, 'longest time an answer stays in the shared cache', { min: 1 }),
  max_names: f.int(
    10,
    'distinct names (rDNS names, HELO, sender domains together) asked about per connection; past it a name is read from the shared cache only, never asked (dnsbl=skip:name_budget); 0 or off = no cap',
    { min: 0, off: true },
  ),
  cache_names: f.rate(
    { limit: 200, windowSec: 3600 },
    'new names per client netblock (IPv4 /24, IPv6 /48) whose answers are written to the shared cache, N/window; the rest stay in this node\'s resolver cache; off = no cap',
  ),
  health_interval: f.duration(300, 'how often one node of the fleet probes every zone\'s test points (0 or off = never)', { min: 0, off: true }),
  health_failures: f.int(
    3,
    'a zone is disabled after this many failed probes in a row (wrong answers, SERVFAIL, REFUSED), and at the first probe that shows it listing its never-listed test point; a probe that times out changes nothing; one good probe enables the zone again',
    { min: 1 },
  ),
  error_log_interval: f.duration(300, 'at most one log line per zone per this interval about its errors', { min: 1 }),
  exempt_rcpts: f.retired('the exempt recipients of every check are shield.ini [main] exempt_rcpts'),
  header: f.retired('the suite adds one X-Shield header (shield.ini [policy] tag_score); the zones are its dnsbl.<zone> tags'),
};

const ZONE = {
  type: f.oneOf(['ip', 'domain', 'allow'] as const, 'ip', 'ip: a blocklist of client addresses; allow: an allowlist of addresses (weights count negative); domain: a list of domain names (RHSBL, DBL)'),
  zone: f.str('', 'the DNS zone, e.g. zen.spamhaus.org', { required: true }),
  key: f.str('', 'a query key (Spamhaus DQS): queries go to <item>.<key>.<zone>; never shown in replies or logs', { pattern: /^[A-Za-z0-9]*$/ }),
  ipv4: f.bool(true, 'query IPv4 clients'),
  ipv6: f.bool(false, 'query IPv6 clients (nibble format); only for zones that list IPv6'),
  listed: f.list([], 'return codes that count, one "listed[] = <code|from-to|bitmask:N> <label> <weight>" line each; none = any 127.0.0.0/8 answer that is not an error', undefined, { whole: true }),
  errors: f.list([], 'more return codes that mean a zone error (127.0.0.1, 127.255.255.0/24 and answers outside 127/8 always do)', undefined, { whole: true }),
  weight: f.num(1, 'the weight of a listing when no listed[] lines are given'),
  tag_only: f.bool(false, 'record and add to the header, never count towards the threshold'),
  lookup_url: f.str('', 'where a listed sender can look itself up; {item} is replaced by the IP or domain', { free: true }),
  check: f.list(['helo', 'rdns', 'mail_from'], 'domain zones: the names checked (helo, rdns, mail_from)', (s) => {
    if (!['helo', 'rdns', 'mail_from'].includes(s)) throw new Error(`"${s}" is not one of helo, rdns, mail_from`);
    return s;
  }),
  registered_domain: f.bool(true, 'domain zones: ask about the registered domain (example.co.uk), not the full host name'),
  test_listed: f.str('auto', 'an item the zone always lists: auto = 127.0.0.2 (ip zones) or "test" (domain zones); empty = do not probe it'),
  test_unlisted: f.str('auto', 'an item the zone never lists: auto = 127.0.0.1 (ip zones) or "invalid" (domain zones); empty = do not probe it'),
};

/** for `haraka-shield config`: the main section and the fields of one zone section */
export const DNSBL_SCHEMA = { main: MAIN, '<zone name>': ZONE } as const;

/** a zone's test points: an item it always lists and one it never lists ('' = not probed) */
export interface ZoneProbe {
  readonly listed: string;
  readonly unlisted: string;
}

export interface DnsblConfig {
  main: SchemaOf<{ main: typeof MAIN }>['main'];
  zones: Zone[];
  /** per zone: test points */
  probes: Map<string, ZoneProbe>;
}

/**
 * Read shield.dnsbl.ini: [main] plus one section per zone; errors name file, section and key. With
 * `onError` every problem is reported there and the zone with it is left out (`haraka-shield check`).
 */
export function parseDnsblConfig(
  raw: Record<string, Record<string, unknown>> | null,
  warn: (message: string) => void = () => undefined,
  onError?: (err: ConfigError) => void,
): DnsblConfig {
  const r = (raw ?? {}) as Record<string, Record<string, string>>;
  const main = parseConfig(DNSBL_FILE, { main: MAIN }, { main: r.main ?? {} }, warn, onError).main;
  const zones: Zone[] = [];
  const probes = new Map<string, ZoneProbe>();
  for (const name of main.zones) {
    if (!r[name]) {
      const err = new ConfigError(DNSBL_FILE, 'main', 'zones', `no section [${name}]`);
      if (!onError) throw err;
      onError(err);
    }
  }
  for (const section of Object.keys(r)) {
    if (section === 'main') continue;
    try {
      const zone = parseZone(section, r[section] as Record<string, string>, main.zones.includes(section));
      if (zone) {
        zones.push(zone.zone);
        probes.set(section, zone.probe);
      }
    } catch (err) {
      if (!onError || !(err instanceof ConfigError)) throw err;
      onError(err);
    }
  }
  return { main, zones, probes };
}

/** one zone section; null when the zone is not in use (its section is still checked) */
function parseZone(section: string, raw: Record<string, string>, inUse: boolean): { zone: Zone; probe: ZoneProbe } | null {
  const z = parseConfig(DNSBL_FILE, { [section]: ZONE }, { [section]: raw })[section] as SchemaOf<{ z: typeof ZONE }>['z'];
  if (!inUse) return null;
  const at = (key: string, fn: () => unknown) => {
    try {
      return fn();
    } catch (err) {
      throw new ConfigError(DNSBL_FILE, section, key, errorMessage(err));
    }
  };
  if (!normalizeHostname(z.zone, { underscore: true })) throw new ConfigError(DNSBL_FILE, section, 'zone', `"${z.zone}" is not a DNS zone`);
  const sign = z.type === 'allow' ? -1 : 1;
  const listed = at('listed', () => z.listed.map((t) => parsePattern(t, { label: section, weight: 1 }))) as ReturnType<typeof parsePattern>[];
  const zone: Zone = Object.freeze({
    name: section,
    type: z.type,
    zone: normalizeHostname(z.zone, { underscore: true }) as string,
    key: z.key,
    ipv4: z.ipv4,
    ipv6: z.ipv6,
    listed: listed.map((p) => ({ ...p, weight: sign * Math.abs(p.weight) })),
    errors: at('errors', () => z.errors.map((t) => parsePattern(t, { label: 'error', weight: 0 }))) as ReturnType<typeof parsePattern>[],
    weight: sign * Math.abs(z.weight),
    tagOnly: z.tag_only,
    lookupUrl: z.lookup_url,
    identities: z.check as Zone['identities'],
    registeredDomain: z.registered_domain,
  });
  const domain = z.type === 'domain';
  const auto = (v: string, ipDefault: string, domainDefault: string) => (v === 'auto' ? (domain ? domainDefault : ipDefault) : v);
  return { zone, probe: { listed: auto(z.test_listed, '127.0.0.2', 'test'), unlisted: auto(z.test_unlisted, '127.0.0.1', 'invalid') } };
}
