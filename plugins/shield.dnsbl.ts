/**
 * shield.dnsbl: DNS block and allow lists, queried in parallel at connect, answers read carefully
 * (zone errors are never listings), weighted against a threshold and enforced at RCPT (or connect).
 * Answers are cached in the shared store; each zone's health is probed by one node per interval and
 * shared, so every node stops using a zone that lists everything or answers nothing.
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { f, parseConfig, type SchemaOf } from './shield/core/config';
import { errorMessage } from './shield/core/errors';
import type { HarakaAddress, HarakaConnection, HarakaPlugin } from './shield/core/haraka';
import { normalizeHostname, parseIp, type ParsedIp } from './shield/core/net';
import { reply, type Reply } from './shield/core/policy';
import { setupShield, type Shield } from './shield/core/suite';
import {
  classify,
  describeListings,
  domainItem,
  healthVerdict,
  ipQueryLabel,
  parsePattern,
  queryName,
  score,
  type Zone,
  type ZoneResult,
} from './shield/checks/dnsbl';

const FILE = 'shield.dnsbl.ini';

const MAIN = {
  zones: f.list([], 'the zones in use, by section name, e.g. "zones = zen, spamcop, dnswl"'),
  threshold: f.num(1, 'reject when the weights of the listing zones add up to this or more'),
  enforce_at: f.oneOf(['rcpt', 'connect'] as const, 'rcpt', 'rcpt: refuse each recipient (postmaster@ and abuse@ of our domains and authenticated users exempt, sender and recipient in the log); connect: refuse at once with 554'),
  exempt_private: f.bool(true, 'skip private, loopback and link-local clients'),
  cache_min_ttl: f.duration(60, 'shortest time an answer stays in the shared cache', { min: 0 }),
  cache_max_ttl: f.duration(3600, 'longest time an answer stays in the shared cache', { min: 1 }),
  health_interval: f.duration(300, 'how often one node of the fleet probes every zone\'s test points (0 = never)', { min: 0 }),
  error_log_interval: f.duration(300, 'at most one log line per zone per this interval about its errors', { min: 1 }),
};

const ZONE = {
  type: f.oneOf(['ip', 'domain', 'allow'] as const, 'ip', 'ip: a blocklist of client addresses; allow: an allowlist of addresses (weights count negative); domain: a list of domain names (RHSBL, DBL)'),
  zone: f.str('', 'the DNS zone, e.g. zen.spamhaus.org'),
  key: f.str('', 'a query key (Spamhaus DQS): queries go to <item>.<key>.<zone>; never shown in replies or logs', { pattern: /^[A-Za-z0-9]*$/ }),
  ipv4: f.bool(true, 'query IPv4 clients'),
  ipv6: f.bool(false, 'query IPv6 clients (nibble format); only for zones that list IPv6'),
  listed: f.list([], 'return codes that count, one "listed[] = <code|from-to|bitmask:N> <label> <weight>" line each; none = any 127.0.0.0/8 answer that is not an error', undefined, { whole: true }),
  errors: f.list([], 'more return codes that mean a zone error (127.0.0.1, 127.255.255.0/24 and answers outside 127/8 always do)', undefined, { whole: true }),
  weight: f.num(1, 'the weight of a listing when no listed[] lines are given'),
  tag_only: f.bool(false, 'record and add to the header, never count towards the threshold'),
  lookup_url: f.str('', 'where a listed sender can look itself up; {item} is replaced by the IP or domain'),
  check: f.list(['helo', 'rdns', 'mail_from'], 'domain zones: the names checked (helo, rdns, mail_from)', (s) => {
    if (!['helo', 'rdns', 'mail_from'].includes(s)) throw new Error(`"${s}" is not one of helo, rdns, mail_from`);
    return s;
  }),
  registered_domain: f.bool(true, 'domain zones: ask about the registered domain (example.co.uk), not the full host name'),
  test_listed: f.str('auto', 'an item the zone always lists: auto = 127.0.0.2 (ip zones) or "test" (domain zones); empty = do not probe it'),
  test_unlisted: f.str('auto', 'an item the zone never lists: auto = 127.0.0.1 (ip zones) or "invalid" (domain zones); empty = do not probe it'),
};

/** for `haraka-shield config`: the main section and the fields of one zone section */
export const SCHEMA = { main: MAIN, '<zone name>': ZONE } as const;

interface ParsedConfig {
  main: SchemaOf<{ main: typeof MAIN }>['main'];
  zones: Zone[];
  /** per zone: test points */
  probes: Map<string, { listed: string; unlisted: string }>;
}

/** Read shield.dnsbl.ini: [main] plus one section per zone; errors name file, section and key. */
export function parseDnsblConfig(raw: Record<string, Record<string, unknown>> | null): ParsedConfig {
  const r = (raw ?? {}) as Record<string, Record<string, string>>;
  const main = parseConfig(FILE, { main: MAIN }, { main: r.main ?? {} }).main;
  const zones: Zone[] = [];
  const probes = new Map<string, { listed: string; unlisted: string }>();
  for (const name of main.zones) {
    if (!r[name]) throw new Error(`${FILE} [main] zones: no section [${name}]`);
  }
  for (const section of Object.keys(r)) {
    if (section === 'main') continue;
    const z = parseConfig(FILE, { [section]: ZONE }, { [section]: r[section] })[section] as SchemaOf<{ z: typeof ZONE }>['z'];
    if (!main.zones.includes(section)) continue;
    const at = (key: string, fn: () => unknown) => {
      try {
        return fn();
      } catch (err) {
        throw new Error(`${FILE} [${section}] ${key}: ${errorMessage(err)}`);
      }
    };
    if (!normalizeHostname(z.zone, true)) throw new Error(`${FILE} [${section}] zone: "${z.zone}" is not a DNS zone`);
    const sign = z.type === 'allow' ? -1 : 1;
    const listed = at('listed', () => z.listed.map((t) => parsePattern(t, { label: section, weight: 1 }))) as ReturnType<typeof parsePattern>[];
    zones.push(
      Object.freeze({
        name: section,
        type: z.type,
        zone: normalizeHostname(z.zone, true) as string,
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
      }),
    );
    const domain = z.type === 'domain';
    const auto = (v: string, ipDefault: string, domainDefault: string) => (v === 'auto' ? (domain ? domainDefault : ipDefault) : v);
    probes.set(section, { listed: auto(z.test_listed, '127.0.0.2', 'test'), unlisted: auto(z.test_unlisted, '127.0.0.1', 'invalid') });
  }
  return { main, zones, probes };
}

interface Lookup {
  zone: Zone;
  /** what is asked about, as shown: the IP or the domain */
  item: string;
  /** the query label: reversed IPv4 octets or IPv6 nibbles, or the domain */
  label: string;
  identity: ZoneResult['identity'];
}

/** what this plugin keeps in the Session */
interface ConnState {
  skip: string | null;
  /** lookups started at connect (IP zones, rDNS name) and at the first HELO */
  pending: Array<Promise<ZoneResult[]>>;
  helo: boolean;
  recordedErrors: Set<string>;
}

interface DnsblPlugin extends HarakaPlugin {
  shield: Shield;
  cfg: ParsedConfig;
  /** zone name -> why it is disabled (health) */
  disabled: Map<string, string>;
  errorLog: Map<string, { last: number; count: number }>;
  nodeId: string;
  timer: NodeJS.Timeout | null;
}

const STATE = 'dnsbl';
/** per transaction: the sender domain lookups and the verdict once given */
interface TxnState {
  pending: Promise<ZoneResult[]>;
  decided?: Reply | null;
}
const newConnState = (): ConnState => ({ skip: null, pending: [], helo: false, recordedErrors: new Set() });

function load(plugin: DnsblPlugin, first: boolean): void {
  try {
    plugin.cfg = parseDnsblConfig(plugin.config.get(FILE, 'ini', () => load(plugin, false)) as Record<string, Record<string, unknown>>);
    if (!first) {
      plugin.loginfo(`reloaded ${FILE}: zones ${plugin.cfg.zones.map((z) => z.name).join(', ') || '(none)'}`);
      startHealth(plugin);
    }
  } catch (err) {
    if (first) throw err;
    plugin.logerror(`${errorMessage(err)}; keeping the last good ${FILE}`);
  }
}

function clampTtl(plugin: DnsblPlugin, ttl: number): number {
  const m = plugin.cfg.main;
  return Math.min(m.cache_max_ttl, Math.max(m.cache_min_ttl, ttl));
}

function cacheKey(l: Lookup): string {
  // the zone and item only: never the DQS key
  return `dnsbl:a:${l.zone.zone}:${l.item}`;
}

function noteError(plugin: DnsblPlugin, zone: Zone, why: string): void {
  const now = Date.now();
  const e = plugin.errorLog.get(zone.name) ?? { last: 0, count: 0 };
  e.count++;
  if (now - e.last >= plugin.cfg.main.error_log_interval * 1000) {
    plugin.logerror(`dnsbl zone ${zone.name}: ${why} (${e.count} error${e.count === 1 ? '' : 's'} since the last report); answers like this are never read as listings`);
    e.last = now;
    e.count = 0;
  }
  plugin.errorLog.set(zone.name, e);
  // the fleet-wide metric: errors per zone per day
  plugin.shield.suite.store.incr(`dnsbl:errors:${zone.name}`, 1, 86400).catch(() => undefined);
}

/**
 * Look up every (zone, item) pair: one shared-cache read for all of them, DNS in parallel for the
 * misses, one cache write for the answers. Never rejects; a DNS fault is a zone error.
 */
function lookupAll(plugin: DnsblPlugin, lookups: Lookup[]): Promise<ZoneResult[]> {
  // started before anyone awaits it (and maybe never awaited): it must never reject
  return lookupAllUnsafe(plugin, lookups).catch((err: unknown) => {
    plugin.logerror(`dnsbl lookups failed: ${errorMessage(err)}`);
    return [];
  });
}

async function lookupAllUnsafe(plugin: DnsblPlugin, lookups: Lookup[]): Promise<ZoneResult[]> {
  const live = lookups.filter((l) => !plugin.disabled.has(l.zone.name));
  if (live.length === 0) return [];
  const store = plugin.shield.suite.store;
  const cached = await store.cacheGetMany(live.map(cacheKey)).catch(() => live.map(() => null));
  const writes: Array<{ key: string; value: string; ttlSec: number }> = [];
  const results = await Promise.all(
    live.map(async (l, i): Promise<ZoneResult> => {
      let codes: string[];
      const hit = cached[i];
      const fromCache = hit ? parseCached(hit) : null;
      if (fromCache) {
        codes = fromCache;
      } else {
        try {
          const ans = await plugin.shield.suite.resolver.query(queryName(l.zone, l.label), 'A');
          codes = [...ans.records];
          writes.push({ key: cacheKey(l), value: JSON.stringify(codes), ttlSec: clampTtl(plugin, ans.ttl) });
        } catch (err) {
          // the resolver's message names the query (and a DQS key): keep it out of logs
          const code = (err as { code?: string }).code ?? 'DNS_ERROR';
          const outcome = { status: 'error' as const, why: code === 'DNS_TIMEOUT' ? 'timed out' : `lookup failed (${code})` };
          noteError(plugin, l.zone, outcome.why);
          return { zone: l.zone, item: l.item, identity: l.identity, outcome };
        }
      }
      const outcome = classify(l.zone, codes);
      if (outcome.status === 'error') noteError(plugin, l.zone, outcome.why);
      return { zone: l.zone, item: l.item, identity: l.identity, outcome };
    }),
  );
  if (writes.length) store.cacheSetMany(writes).catch(() => undefined);
  return results;
}

/** a cached answer, or null when the value is not one (then the zone is asked again) */
function parseCached(raw: string): string[] | null {
  try {
    const v: unknown = JSON.parse(raw);
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null;
  } catch {
    return null;
  }
}

function ipLookups(plugin: DnsblPlugin, ip: ParsedIp): Lookup[] {
  const label = ipQueryLabel(ip);
  return plugin.cfg.zones
    .filter((z) => z.type !== 'domain' && (ip.family === 4 ? z.ipv4 : z.ipv6))
    .map((zone) => ({ zone, item: ip.text, label, identity: 'ip' as const }));
}

function domainLookups(plugin: DnsblPlugin, identity: 'helo' | 'rdns' | 'mail_from', name: string | null): Lookup[] {
  const out: Lookup[] = [];
  for (const zone of plugin.cfg.zones) {
    if (zone.type !== 'domain' || !zone.identities.includes(identity)) continue;
    const item = domainItem(zone, name);
    if (item) out.push({ zone, item, label: item, identity });
  }
  return out;
}

function identityText(r: ZoneResult, ip: string): string {
  if (r.identity === 'ip') return ip;
  if (r.identity === 'helo') return `the HELO name ${r.item}`;
  if (r.identity === 'rdns') return `the host name ${r.item}`;
  return `the sender domain ${r.item}`;
}

function listingText(listings: readonly ZoneResult[], ip: string): string {
  const byItem = new Map<string, ZoneResult[]>();
  for (const l of listings.filter((x) => x.outcome.status === 'listed' && x.outcome.weight > 0)) {
    const k = identityText(l, ip);
    byItem.set(k, [...(byItem.get(k) ?? []), l]);
  }
  return [...byItem].map(([who, ls]) => `${who} is listed by ${describeListings(ls)}`).join('; ');
}

/** Score what the lookups found, record it, and return the reply (or null to let the mail on). */
async function decideFor(plugin: DnsblPlugin, conn: HarakaConnection, pending: Array<Promise<ZoneResult[]>>, atConnect: boolean): Promise<Reply | null> {
  const results = (await Promise.all(pending)).flat();
  const session = plugin.shield.session(conn);
  const st = session.peek<ConnState>(STATE);
  for (const e of results.filter((r) => r.outcome.status === 'error')) {
    const k = `${e.zone.name}:${e.item}`;
    if (st?.recordedErrors.has(k)) continue;
    st?.recordedErrors.add(k);
    plugin.shield.record(conn, { check: 'dnsbl', outcome: 'err', reason: 'zone_error', data: { zone: e.zone.name, why: e.outcome.status === 'error' ? e.outcome.why : '' } });
  }
  const s = score(results);
  const zonesText = [...s.listings, ...s.tags].map((l) => `${l.zone.name}${l.outcome.status === 'listed' && l.outcome.labels.length ? `(${l.outcome.labels.join(',')})` : ''}`);
  const listed = s.score >= plugin.cfg.main.threshold && s.listings.length > 0;
  const ev = { check: 'dnsbl', outcome: listed ? ('fail' as const) : ('pass' as const), reason: listed ? 'listed' : s.listings.length || s.tags.length ? 'below_threshold' : 'clean', score: s.score, data: { zones: zonesText } };
  plugin.shield.record(conn, ev);
  // every zone that listed something is a tag; its weight is its score in the suite's sum (a
  // tag-only zone's is 0, an allow zone's negative); a sender domain's listing lasts its transaction
  for (const l of [...s.listings, ...s.tags]) {
    if (l.outcome.status === 'listed') session.tag(`dnsbl.${l.zone.name}`, l.zone.tagOnly ? 0 : l.outcome.weight, l.identity === 'mail_from' ? 'transaction' : 'connection');
  }
  if (!listed) return null;
  const text = `Rejected: ${listingText(s.listings, session.identity.ipText)}`;
  const r = atConnect ? reply(554, '5.7.1', text, true) : reply(550, '5.7.1', text);
  return plugin.shield.decide(conn, ev, { fail: 'reject', err: 'ignore' }, { reject: r, defer: r }).reply;
}

/** Probe every zone's test points (one node of the fleet per interval) and share the verdict. */
async function healthRound(plugin: DnsblPlugin): Promise<void> {
  const m = plugin.cfg.main;
  if (m.health_interval <= 0 || plugin.cfg.zones.length === 0) return;
  const store = plugin.shield.suite.store;
  // one node per interval: the lease is held (never released) until it lapses before the next round
  const lock = await store.leaseAcquire('dnsbl:probe', plugin.nodeId, m.health_interval * 0.9, 1);
  const keys = plugin.cfg.zones.map((z) => `dnsbl:health:${z.zone}`);
  if (lock.granted) {
    const verdicts = await Promise.all(plugin.cfg.zones.map((z) => probe(plugin, z)));
    await store.cacheSetMany(verdicts.map((v, i) => ({ key: keys[i] as string, value: JSON.stringify(v), ttlSec: m.health_interval * 3 })));
  }
  await readHealth(plugin, keys);
}

/** apply the fleet's health verdicts (written by whichever node probed last) */
async function readHealth(plugin: DnsblPlugin, keys: string[]): Promise<void> {
  const store = plugin.shield.suite.store;
  const states = await store.cacheGetMany(keys);
  plugin.cfg.zones.forEach((z, i) => {
    const raw = states[i];
    if (!raw) return;
    const v = JSON.parse(raw) as { ok: boolean; why: string };
    const was = plugin.disabled.get(z.name);
    if (!v.ok && was === undefined) plugin.logerror(`dnsbl zone ${z.name} disabled: ${v.why}`);
    if (v.ok && was !== undefined) plugin.lognotice(`dnsbl zone ${z.name} enabled again: its test points answer as they should`);
    if (v.ok) plugin.disabled.delete(z.name);
    else plugin.disabled.set(z.name, v.why);
  });
}

async function probe(plugin: DnsblPlugin, zone: Zone): Promise<{ ok: boolean; why: string }> {
  const p = plugin.cfg.probes.get(zone.name);
  if (!p) return { ok: true, why: '' };
  const item = (t: string) => {
    const ip = parseIp(t);
    return ip ? ipQueryLabel(ip) : t;
  };
  const ask = async (t: string): Promise<string[] | null> => {
    try {
      return [...(await plugin.shield.suite.resolver.query(queryName(zone, item(t)), 'A')).records];
    } catch {
      return null;
    }
  };
  const [listed, unlisted] = await Promise.all([p.listed ? ask(p.listed) : Promise.resolve(undefined), p.unlisted ? ask(p.unlisted) : Promise.resolve(undefined)]);
  return healthVerdict(zone, p, { listed, unlisted });
}

function startHealth(plugin: DnsblPlugin): void {
  if (plugin.timer) clearInterval(plugin.timer);
  plugin.timer = null;
  const every = plugin.cfg.main.health_interval;
  if (every <= 0) return;
  const run = () => healthRound(plugin).catch((err: unknown) => plugin.logerror(`dnsbl health check: ${errorMessage(err)}`));
  plugin.timer = setInterval(run, every * 1000);
  plugin.timer.unref();
  // the first round soon after start (once the store had a moment to connect); the nodes that did
  // not probe read the verdicts again a little later, when the prober has written them
  setTimeout(run, 500).unref();
  setTimeout(() => {
    readHealth(plugin, plugin.cfg.zones.map((z) => `dnsbl:health:${z.zone}`)).catch(() => undefined);
  }, 3000).unref();
}

/**
 * The client's forward-confirmed rDNS names, normalised (a PTR is the client's own claim: an
 * unconfirmed or malformed name is never asked about, logged or put in a reply).
 */
async function confirmedNames(plugin: DnsblPlugin, conn: HarakaConnection): Promise<string[]> {
  const session = plugin.shield.session(conn);
  const names = [...new Set((session.ptr?.names ?? []).map((n) => normalizeHostname(n, true)).filter((n): n is string => n !== null))].slice(0, 3);
  const ok = await Promise.all(names.map((n) => plugin.shield.suite.resolver.forwardConfirms(n, session.identity.ip).catch(() => false)));
  return names.filter((_, i) => ok[i]);
}

export function register(this: DnsblPlugin): void {
  this.shield = setupShield(this, 'dnsbl');
  this.disabled = new Map();
  this.errorLog = new Map();
  this.nodeId = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  this.timer = null;
  load(this, true);
  startHealth(this);

  // the address lists are asked at connect_init, in parallel with the PTR lookup (lookup_rdns) that
  // follows it; whether the answers are used is decided at connect, once the exemptions are known
  this.dnsbl_connect_init = this.shield.hook('connect_init', (conn) => {
    const session = this.shield.session(conn);
    if (session.closed || session.peek(STATE)) return undefined;
    const st = session.local(STATE, newConnState);
    if (!(this.cfg.main.exempt_private && session.identity.isPrivate)) st.pending.push(lookupAll(this, ipLookups(this, session.identity.ip)));
    return undefined;
  });
  this.register_hook('connect_init', 'dnsbl_connect_init');

  // after shield.relay, shield.blocklist, shield.limit and shield.rdns have looked at the client
  this.dnsbl_connect = this.shield.hook('connect', async (conn) => {
    const session = this.shield.session(conn);
    let st = session.peek<ConnState>(STATE);
    if (!st) {
      // connect_init was answered by another plugin before ours: ask now
      st = session.local(STATE, newConnState);
      st.pending.push(lookupAll(this, ipLookups(this, session.identity.ip)));
    }
    st.skip = session.exemption({ relayClients: true, authenticated: true, allowlisted: true, privateIps: this.cfg.main.exempt_private });
    if (st.skip) {
      this.shield.record(conn, { check: 'dnsbl', outcome: 'skip', reason: st.skip });
      return undefined;
    }
    if (this.cfg.zones.some((z) => z.type === 'domain' && z.identities.includes('rdns'))) {
      st.pending.push(confirmedNames(this, conn).then((names) => lookupAll(this, names.flatMap((n) => domainLookups(this, 'rdns', n)))));
    }
    if (this.cfg.main.enforce_at !== 'connect') return undefined;
    return (await decideFor(this, conn, st.pending, true)) ?? undefined;
  });
  this.register_hook('connect', 'dnsbl_connect', -70);

  this.dnsbl_helo = this.shield.hook('helo', (conn, helo: string) => {
    const st = this.shield.session(conn).peek<ConnState>(STATE);
    if (!st || st.skip || st.helo) return undefined;
    st.helo = true;
    const lookups = domainLookups(this, 'helo', String(helo ?? ''));
    if (lookups.length) st.pending.push(lookupAll(this, lookups));
    return undefined;
  });
  this.register_hook('helo', 'dnsbl_helo', -70);
  this.register_hook('ehlo', 'dnsbl_helo', -70);

  this.dnsbl_mail = this.shield.hook('mail', (conn, [from]: [HarakaAddress, unknown]) => {
    const session = this.shield.session(conn);
    const st = session.peek<ConnState>(STATE);
    if (!st || st.skip || !conn.transaction) return undefined;
    const domain = from?.host && from.user ? normalizeHostname(from.host, true) : null;
    session.txn<TxnState>(STATE, () => ({ pending: lookupAll(this, domainLookups(this, 'mail_from', domain)) }));
    return undefined;
  });
  this.register_hook('mail', 'dnsbl_mail', -70);

  // after shield.relay (-100), shield.blocklist (-50), shield.rdns (-40), shield.limit (-30)
  this.dnsbl_rcpt = this.shield.hook('rcpt', async (conn, [rcpt]: [HarakaAddress, unknown]) => {
    const session = this.shield.session(conn);
    const st = session.peek<ConnState>(STATE);
    if (!st || st.skip || !conn.transaction || this.cfg.main.enforce_at !== 'rcpt') return undefined;
    if (session.authUser) return undefined;
    if (this.shield.suite.exemptRecipient(rcpt)) return undefined;
    const t = session.txn<TxnState>(STATE, () => ({ pending: Promise.resolve([]) }));
    if (t.decided === undefined) t.decided = await decideFor(this, conn, [...st.pending, t.pending], false);
    return t.decided ?? undefined;
  });
  this.register_hook('rcpt', 'dnsbl_rcpt', -20);
}
