/**
 * shield.rdns: reverse DNS (PTR, forward confirmation, generic names) and HELO/EHLO checks.
 *
 * Lookups start as early as they can: the PTR in the suite's lookup_rdns, the forward lookups of
 * the PTR names at connect, the HELO's own lookup at the first HELO; all without holding the
 * session. The verdict is taken once, at MAIL or RCPT (enforce_at), after the exemptions that are
 * only known by then (AUTH), from the first HELO of the connection: a second HELO changes nothing.
 */
import type { ConfigHandle } from './shield/core/config';
import type { HarakaAddress, HarakaConnection, HarakaPlugin } from './shield/core/haraka';
import { normalizeHostname, parseIp, type ParsedIp } from './shield/core/net';
import { reply, type Reply } from './shield/core/policy';
import type { Evidence } from './shield/core/results';
import { registerShield, setupShield, type PluginHandle } from './shield/core/suite';
import {
  compilePattern,
  fcrdns,
  genericEvidence,
  heloMatchEvidence,
  heloStaticEvidence,
  rdnsEvidence,
  rdnsReplies,
  type FcrdnsResult,
  type PtrResult,
} from './shield/checks/rdns';
import { RDNS_SCHEMA } from './shield/checks/rdns-config';

/** for `haraka-shield config` */
export { RDNS_SCHEMA as SCHEMA } from './shield/checks/rdns-config';

type ActionKey = keyof (typeof RDNS_SCHEMA)['actions'];

/** which key of [actions] decides each check, and in which order a reply is chosen */
const CHECK_ACTIONS: ReadonlyArray<[string, ActionKey]> = [
  ['helo.impersonation', 'helo_impersonation'],
  ['helo.syntax', 'helo_syntax'],
  ['helo.literal', 'helo_literal'],
  ['rdns.ptr', 'no_ptr'],
  ['rdns.fcrdns', 'fcrdns'],
  ['rdns.generic', 'generic'],
  ['helo.match', 'helo_mismatch'],
];

interface Rdns {
  readonly ptr: PtrResult;
  readonly fc: FcrdnsResult;
}

/** what this plugin keeps in the Session */
interface RdnsState {
  readonly ip: ParsedIp;
  /** the PTR and forward lookups, started at connect; never rejects */
  rdns: Promise<Rdns> | null;
  helo: string | null;
  heloMatch: Promise<Evidence | null> | null;
  verdict: { reply: Reply | null } | null;
  /** the exemption has been recorded */
  skipped?: boolean;
}

interface RdnsPlugin extends HarakaPlugin {
  shield: PluginHandle;
  cfg: ConfigHandle<typeof RDNS_SCHEMA>;
  patterns: RegExp[];
  ourNames: Set<string>;
}

const STATE = 'rdns';

function stateOf(plugin: RdnsPlugin, conn: HarakaConnection): RdnsState | null {
  return plugin.shield.session(conn).peek<RdnsState>(STATE) ?? null;
}

function rebuild(plugin: RdnsPlugin): void {
  const m = plugin.cfg.current.main;
  plugin.patterns = m.generic_patterns.map(compilePattern);
  plugin.ourNames = new Set(m.our_names);
}

/**
 * our host names (config/me, read now: an edit applies; our_names), and shield.relay's local domains
 * as it publishes them (read now: a relay reload applies)
 */
function isOurName(plugin: RdnsPlugin, name: string): boolean {
  if (plugin.ourNames.has(name)) return true;
  const me = plugin.shield.suite.files.me();
  if (me && normalizeHostname(me, { underscore: true }) === name) return true;
  return plugin.cfg.current.main.use_relay_domains && (plugin.shield.suite.localDomains?.names.has(name) ?? false);
}

function ptrOf(plugin: RdnsPlugin, conn: HarakaConnection): Promise<PtrResult> {
  const s = plugin.shield.session(conn);
  if (s.ptr) return Promise.resolve(s.ptr);
  // another plugin answered lookup_rdns: ask ourselves
  return plugin.shield.suite.resolver.reverse(s.identity.ipText).then(
    (a) => ({ status: a.status, names: a.records }),
    () => ({ status: 'error' as const, names: [] }),
  );
}

/** exemptions known at connect: no lookups for these clients */
function earlyExemption(plugin: RdnsPlugin, conn: HarakaConnection): string | null {
  const s = plugin.shield.session(conn);
  if (plugin.cfg.current.main.exempt_ports.includes(String(s.identity.localPort))) return 'submission_port';
  return s.exemption({ relayClients: true, authenticated: true, allowlisted: true, privateIps: plugin.cfg.current.main.exempt_private });
}

/** Gather the evidence (waiting for the lookups started earlier), record it, and choose the reply. */
async function verdict(plugin: RdnsPlugin, conn: HarakaConnection, st: RdnsState): Promise<Reply | null> {
  const m = plugin.cfg.current.main;
  const evidence: Evidence[] = [];
  const r = st.rdns ? await st.rdns : null;
  if (r) {
    evidence.push(...rdnsEvidence(st.ip.text, r.ptr, r.fc));
    const name = r.fc.confirmed ?? r.fc.names[0];
    if (name) evidence.push(genericEvidence(name, st.ip, plugin.patterns));
  }
  if (st.helo !== null) {
    const local = plugin.shield.session(conn).identity.localIp;
    evidence.push(...heloStaticEvidence(st.helo, { ip: st.ip, ourName: (n) => isOurName(plugin, n), ourIps: new Set([parseIp(local)?.text ?? '', ...m.our_ips]) }));
    const hm = st.heloMatch ? await st.heloMatch : null;
    if (hm) evidence.push(hm);
  }
  // a failed check carries its score (what it adds to the suite's sum when its action is tag)
  const scored = evidence.map((ev) => {
    const key = CHECK_ACTIONS.find(([c]) => c === ev.check)?.[1];
    return ev.outcome === 'fail' && key ? { ...ev, score: plugin.cfg.current.scores[key] } : ev;
  });
  for (const ev of scored) plugin.shield.record(conn, ev);

  let defer: Reply | null = null;
  for (const [check, key] of CHECK_ACTIONS) {
    for (const ev of scored.filter((e) => e.check === check)) {
      const d = plugin.shield.decide(conn, ev, { fail: plugin.cfg.current.actions[key], err: m.dns_error === 'defer' ? 'defer' : 'ignore' }, rdnsReplies(check, ev, st.ip.text));
      if (d.reply && d.reply.code >= 500) return d.reply;
      if (d.reply && !defer) defer = d.reply;
    }
  }
  return defer;
}

export function register(this: RdnsPlugin): void {
  registerShield(this, () => {
    this.shield = setupShield(this, 'rdns');
    this.cfg = this.shield.suite.files.ini('shield.rdns.ini', RDNS_SCHEMA, this);
    rebuild(this);
    this.cfg.onChange(() => rebuild(this));

    // after shield.relay (-100) and shield.blocklist (-90): relay clients and allowlisted clients are known
    this.rdns_connect = this.shield.hook('connect', (conn) => {
      const session = this.shield.session(conn);
      const ip = session.identity.ip;
      const st = session.local<RdnsState>(STATE, () => ({ ip, rdns: null, helo: null, heloMatch: null, verdict: null }));
      if (st.rdns || earlyExemption(this, conn)) return undefined;
      const max = this.cfg.current.main.max_ptr_names;
      const resolver = this.shield.suite.resolver;
      // started now, awaited at the verdict; never rejects
      st.rdns = ptrOf(this, conn)
        .then(async (ptr) => ({ ptr, fc: await fcrdns(ip, ptr, resolver, max) }))
        .catch((): Rdns => ({ ptr: { status: 'error', names: [] }, fc: { iprev: 'temperror', confirmed: null, names: [], errors: [] } }));
      void st.rdns.then(({ fc }) => {
        // for other checks: SPF's ptr mechanism, shield.dnsbl's domain lists, Authentication-Results
        session.iprev = { result: fc.iprev, ip: ip.text, name: fc.confirmed ?? fc.names[0] ?? null };
        session.fcrdns = fc.confirmed;
      });
      return undefined;
    });
    this.register_hook('connect', 'rdns_connect', -80);

    // the first HELO/EHLO is the one judged; its lookup starts now
    this.rdns_helo = this.shield.hook('helo', (conn, helo: string) => {
      const st = stateOf(this, conn);
      if (!st || st.helo !== null) return undefined;
      st.helo = String(helo ?? '');
      if (st.rdns) {
        const resolver = this.shield.suite.resolver;
        const h = st.helo;
        // a PTR or forward lookup that failed leaves the match undecidable, never a mismatch
        st.heloMatch = st.rdns.then((r) => heloMatchEvidence(h, st.ip, r.fc.confirmed, resolver, r.fc.iprev === 'temperror')).catch(() => null);
      }
      return undefined;
    });
    this.register_hook('helo', 'rdns_helo', -80);
    this.register_hook('ehlo', 'rdns_helo', -80);

    const enforce = (stage: 'mail' | 'rcpt') =>
      this.shield.hook(
        stage,
        async (conn, [address]: [HarakaAddress, unknown]) => {
          if (this.cfg.current.main.enforce_at !== stage) return undefined;
          const st = stateOf(this, conn);
          if (!st) return undefined;
          // postmaster@ and abuse@ of our domains stay reachable for a client we would refuse
          if (stage === 'rcpt' && this.shield.suite.exemptRecipient(address)) return undefined;
          // asked every time: a client that authenticates after a refusal is exempt from then on
          const why = earlyExemption(this, conn);
          if (why) {
            if (!st.skipped) this.shield.record(conn, { check: 'rdns', outcome: 'skip', reason: why });
            st.skipped = true;
            return undefined;
          }
          st.verdict ??= { reply: await verdict(this, conn, st) };
          return st.verdict.reply ?? undefined;
        },
        // a fault of ours (recorded as err) is treated as a DNS fault: defer or let the session go on
        () => (this.cfg.current.main.dns_error === 'defer' ? reply(451, '4.3.0', 'Temporary failure checking your host; please try again later') : undefined),
      );
    this.rdns_mail = enforce('mail');
    this.register_hook('mail', 'rdns_mail', -80);
    // after shield.relay (-100) and shield.blocklist (-50)
    this.rdns_rcpt = enforce('rcpt');
    this.register_hook('rcpt', 'rdns_rcpt', -40);
  });
}
