/**
 * shield.dnsbl: DNS block and allow lists, queried in parallel at connect, answers read carefully
 * (zone errors are never listings), weighted against a threshold and enforced at RCPT (or connect).
 *
 *   shield/checks/dnsbl.ts          what an answer means, the score, the reply text
 *   shield/checks/dnsbl-config.ts   shield.dnsbl.ini: schema and zones
 *   shield/checks/dnsbl-lookup.ts   the lookups, through the fleet's shared cache
 *   shield/checks/dnsbl-health.ts   each zone's health, probed by one node per interval and shared
 */
import type { HarakaAddress, HarakaConnection, HarakaPlugin } from './shield/core/haraka';
import { normalizeHostname } from './shield/core/net';
import { reply, type Reply } from './shield/core/policy';
import { registerShield, setupShield, type PluginHandle } from './shield/core/suite';
import { listedZones, listingText, score, type ZoneResult } from './shield/checks/dnsbl';
import { DNSBL_FILE, parseDnsblConfig, type DnsblConfig } from './shield/checks/dnsbl-config';
import { ZoneHealth } from './shield/checks/dnsbl-health';
import { NameBudget, ZoneLookups, domainLookups, ipLookups, type Lookup, type ZoneResolver } from './shield/checks/dnsbl-lookup';
import { netSubject } from './shield/checks/limits';

/** for `haraka-shield config` */
export { DNSBL_SCHEMA as SCHEMA } from './shield/checks/dnsbl-config';

/** what this plugin keeps in the Session */
interface ConnState {
  skip: string | null;
  /** lookups started at connect (IP zones, rDNS name) and at the first HELO */
  pending: Array<Promise<ZoneResult[]>>;
  helo: boolean;
  /** zone:item pairs whose error or skip is recorded (once per connection) */
  recordedErrors: Set<string>;
  /** the distinct names asked about in this connection ([main] max_names) */
  names: NameBudget;
}
/** per transaction: the sender domain lookups and the verdict once given */
interface TxnState {
  pending: Promise<ZoneResult[]>;
  decided?: Reply | null;
}
const STATE = 'dnsbl';
const newConnState = (): ConnState => ({ skip: null, pending: [], helo: false, recordedErrors: new Set(), names: new NameBudget() });

interface DnsblPlugin extends HarakaPlugin {
  shield: PluginHandle;
  cfg: DnsblConfig;
  lookups: ZoneLookups;
  health: ZoneHealth;
}

/** shield.dnsbl.ini through the suite's registry: the first load throws, a bad edit keeps the last good one */
function load(plugin: DnsblPlugin): void {
  const file = plugin.shield.suite.files.parsed(DNSBL_FILE, 'shield.dnsbl', (raw) => parseDnsblConfig(raw as Record<string, Record<string, unknown>> | null, (m) => plugin.logwarn(m)), plugin);
  plugin.cfg = file.current;
  file.onChange((cfg) => {
    plugin.cfg = cfg;
    plugin.loginfo(`zones in use: ${cfg.zones.map((z) => z.name).join(', ') || '(none)'}`);
    plugin.health.start();
  });
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
  // items a zone could not be asked about (a name too long with the zone appended): not asked, no wait
  for (const e of results.filter((r) => r.outcome.status === 'skip')) {
    const k = `${e.zone.name}:${e.item}`;
    if (st?.recordedErrors.has(k)) continue;
    st?.recordedErrors.add(k);
    plugin.shield.record(conn, { check: 'dnsbl', outcome: 'skip', reason: 'not_asked', data: { zone: e.zone.name, identity: e.identity, why: e.outcome.status === 'skip' ? e.outcome.why : '' } });
  }
  const s = score(results);
  const listed = s.score >= plugin.cfg.main.threshold && s.listings.length > 0;
  const ev = { check: 'dnsbl', outcome: listed ? ('fail' as const) : ('pass' as const), reason: listed ? 'listed' : s.listings.length || s.tags.length ? 'below_threshold' : 'clean', score: s.score, data: { zones: listedZones(s) } };
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

/**
 * The client's forward-confirmed rDNS names, normalised (a PTR is the client's own claim: an
 * unconfirmed or malformed name is never asked about, logged or put in a reply).
 */
async function confirmedNames(plugin: DnsblPlugin, conn: HarakaConnection): Promise<string[]> {
  const session = plugin.shield.session(conn);
  const names = [...new Set((session.ptr?.names ?? []).map((n) => normalizeHostname(n, { underscore: true })).filter((n): n is string => n !== null))].slice(0, 3);
  const ok = await Promise.all(names.map((n) => plugin.shield.suite.resolver.forwardConfirms(n, session.identity.ip).catch(() => false)));
  return names.filter((_, i) => ok[i]);
}

/**
 * Ask the domain zones about names the client chose, within the connection's name budget: the
 * names past `max_names` are read from the shared cache only (no DNS query, no cache write) and
 * recorded as skip:name_budget; new answers reach the shared cache within the client netblock's `cache_names`.
 */
function lookupNames(plugin: DnsblPlugin, conn: HarakaConnection, st: ConnState, lookups: readonly Lookup[]): Promise<ZoneResult[]> {
  if (lookups.length === 0) return Promise.resolve([]);
  const session = plugin.shield.session(conn);
  const max = plugin.cfg.main.max_names;
  const { within, over } = st.names.split(lookups, max);
  // counted per IPv4 address or IPv6 /64, as shield.limit counts a client by default
  // counted per netblock (IPv4 /24, IPv6 /48): an end-user IPv6 allocation holds 65,536 /64s
  const parts = [plugin.lookups.all(within, { client: netSubject(session.identity.ip, 24, 48) })];
  if (over.length) {
    for (const l of new Map(over.map((o) => [o.item, o])).values()) {
      plugin.shield.record(conn, { check: 'dnsbl', outcome: 'skip', reason: 'name_budget', data: { item: l.item, identity: l.identity, max_names: max } });
    }
    parts.push(plugin.lookups.all(over, { cacheOnly: true }));
  }
  return Promise.all(parts).then((r) => r.flat());
}

export function register(this: DnsblPlugin): void {
  registerShield(this, () => {
    this.shield = setupShield(this, 'dnsbl');
    // the suite's resolver of the moment (a new shield.ini [dns] replaces it); health probes ask fresh
    const resolver: ZoneResolver = { query: (name, type, opts) => this.shield.suite.resolver.query(name, type, opts) };
    const store = this.shield.suite.store;
    this.health = new ZoneHealth({ resolver, store, log: { error: (m) => this.logerror(m), notice: (m) => this.lognotice(m) }, config: () => this.cfg });
    this.lookups = new ZoneLookups({ resolver, store, log: { error: (m) => this.logerror(m) }, settings: () => this.cfg.main, disabled: (zone) => this.health.disabled.has(zone) });
    load(this);
    this.health.start();
    const ipZones = (conn: HarakaConnection) => this.lookups.all(ipLookups(this.cfg.zones, this.shield.session(conn).identity.ip));

    // the address lists are asked at connect_init, in parallel with the PTR lookup (lookup_rdns) that
    // follows it; whether the answers are used is decided at connect, once the exemptions are known
    this.dnsbl_connect_init = this.shield.hook('connect_init', (conn) => {
      const session = this.shield.session(conn);
      if (session.closed || session.peek(STATE)) return undefined;
      const st = session.local(STATE, newConnState);
      if (!(this.cfg.main.exempt_private && session.identity.isPrivate)) st.pending.push(ipZones(conn));
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
        st.pending.push(ipZones(conn));
      }
      st.skip = session.exemption({ relayClients: true, authenticated: true, allowlisted: true, privateIps: this.cfg.main.exempt_private });
      if (st.skip) {
        this.shield.record(conn, { check: 'dnsbl', outcome: 'skip', reason: st.skip });
        return undefined;
      }
      if (this.cfg.zones.some((z) => z.type === 'domain' && z.identities.includes('rdns'))) {
        const s = st;
        st.pending.push(confirmedNames(this, conn).then((names) => lookupNames(this, conn, s, names.flatMap((n) => domainLookups(this.cfg.zones, 'rdns', n)))));
      }
      if (this.cfg.main.enforce_at !== 'connect') return undefined;
      return (await decideFor(this, conn, st.pending, true)) ?? undefined;
    });
    this.register_hook('connect', 'dnsbl_connect', -70);

    this.dnsbl_helo = this.shield.hook('helo', (conn, helo: string) => {
      const st = this.shield.session(conn).peek<ConnState>(STATE);
      if (!st || st.skip || st.helo) return undefined;
      st.helo = true;
      const lookups = domainLookups(this.cfg.zones, 'helo', String(helo ?? ''));
      if (lookups.length) st.pending.push(lookupNames(this, conn, st, lookups));
      return undefined;
    });
    this.register_hook('helo', 'dnsbl_helo', -70);
    this.register_hook('ehlo', 'dnsbl_helo', -70);

    this.dnsbl_mail = this.shield.hook('mail', (conn, [from]: [HarakaAddress, unknown]) => {
      const session = this.shield.session(conn);
      const st = session.peek<ConnState>(STATE);
      if (!st || st.skip || !conn.transaction) return undefined;
      const domain = from?.host && from.user ? normalizeHostname(from.host, { underscore: true }) : null;
      session.txn<TxnState>(STATE, () => ({ pending: lookupNames(this, conn, st, domainLookups(this.cfg.zones, 'mail_from', domain)) }));
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
  });
}
