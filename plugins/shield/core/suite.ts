/**
 * What the shield plugins share in one Haraka process: the suite config (config/shield.ini), the
 * store (Redis or memory), the DNS resolver, the suite's lookup_rdns and the per-connection summary
 * line. The first shield plugin to load creates it; every other one gets the same object.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigRegistry, f, type ConfigHandle, type SchemaOf } from './config';
import { Resolver, parseNameserver } from './dns';
import { ConfigError, type ShieldError } from './errors';
import type { HarakaConnection, HarakaPlugin, Next } from './haraka';
import { wrapHook, type HookOutcome } from './hook';
import { SharedLists } from './list-entries';
import { decide, formatReply, reply, toDsn, type Decision, type Mode, type OutcomeActions, type Reply } from './policy';
import { record, summarize, type Evidence } from './results';
import { existingSession, isExemptRecipient, openSession, sessionOf, type Session } from './session';
import type { HarakaAddress } from './haraka';
import { ResilientStore, redisEndpointFromIni } from './shared-store';

export const SUITE_SCHEMA = {
  main: {
    mode: f.oneOf(['enforce', 'dryrun'] as const, 'enforce', 'enforce: send the replies policy asks for; dryrun: only log them (access control in shield.relay always enforces)'),
    exempt_rcpts: f.list(['postmaster', 'abuse'], 'local parts at our domains (shield.relay\'s) that every reputation check lets a refused client reach (RFC 5321 4.5.1, RFC 2142); empty = none', (s) => {
      if (!/^[^\s@]+$/.test(s)) throw new Error(`"${s}" is not a local part`);
      return s.toLowerCase();
    }),
  },
  dns: {
    nameservers: f.list([], 'nameservers the suite queries, "ip", "ip:port" or "[ipv6]:port"; empty = the system resolver (/etc/resolv.conf). Use a local caching resolver.', (s) => {
      parseNameserver(s);
      return s;
    }),
    timeout: f.duration(2, 'time to wait for one answer before trying again', { min: 0.01, max: 30 }),
    tries: f.int(2, 'attempts per query in all, rotating through the nameservers', { min: 1, max: 10 }),
    cache_size: f.int(20000, 'answers kept in this node\'s DNS cache (0 or off = no cache)', { min: 0, off: true }),
    min_ttl: f.duration(0, 'shortest time an answer is cached, whatever its TTL', { min: 0 }),
    max_ttl: f.duration(86400, 'longest time an answer is cached, whatever its TTL', { min: 0 }),
    negative_ttl: f.duration(60, 'cache time of a negative answer that comes without an SOA record', { min: 0 }),
  },
  store: {
    backend: f.oneOf(['redis', 'memory'] as const, 'redis', 'redis: share state through Redis (config/redis.ini [server]), falling back to memory while it is unreachable; memory: this node only'),
    prefix: f.str('shield:', 'prefix of every Redis key the suite writes', { pattern: /^[\w:.-]*$/ }),
    timeout: f.duration(0.25, 'longest wait for one Redis operation before using memory for it', { min: 0.005, max: 10 }),
    retry_after: f.duration(5, 'after Redis failed or timed out, use memory this long before one operation tries Redis again (a slow Redis then costs one wait, not one per operation)', { min: 0.1, max: 300 }),
    max_in_flight: f.int(500, 'Redis operations of this process waiting at once; more use memory until fewer wait', { min: 1 }),
  },
  policy: {
    reject_score: f.num(6, 'refuse (550 5.7.1, naming the findings that weighed most) once the scores of the soft findings add up to this; 0 or off = never. The default scores alone cannot reach 6', { min: 0, off: true }),
    defer_score: f.num(0, 'answer 4xx (the sender retries later) from this sum on, below reject_score; 0 or off = never', { min: 0, off: true }),
    tag_score: f.num(3, 'from this sum on the X-Shield header says tagged=yes (mail filters can file the message as suspect); 0 or off = never', { min: 0, off: true }),
  },
  hooks: {
    budget: f.duration(10, 'longest time a shield hook may take; past it the hook answers as on error (keep below Haraka\'s plugin_timeout)', { min: 0.05, max: 600 }),
  },
} as const;
export type SuiteConfig = SchemaOf<typeof SUITE_SCHEMA>;

/** "backend redis, prefix shield:, timeout 250ms" */
function describeStore(st: SuiteConfig['store']): string {
  return `backend ${st.backend}, prefix ${st.prefix}, timeout ${Math.round(st.timeout * 1000)}ms, retry_after ${st.retry_after}s, max_in_flight ${st.max_in_flight}`;
}

export class Suite {
  /** every shield config file of this process, one owner each */
  readonly files: ConfigRegistry;
  readonly config: ConfigHandle<typeof SUITE_SCHEMA>;
  /** the [store] settings the store was built with: they apply at start only */
  readonly storeInUse: SuiteConfig['store'];
  readonly store: ResilientStore;
  /** the store-held block and allow entries (blockTemporarily for every plugin) */
  readonly lists: SharedLists;
  /**
   * Our domains, published by shield.relay (and again on each of its reloads); null while it is not
   * loaded. `isLocal` answers as relay control does (subdomains with accept_subdomains); `names` are
   * the domains as configured, normalised.
   */
  localDomains: { isLocal(domain: string): boolean; readonly names: ReadonlySet<string> } | null = null;
  private resolverInstance: Resolver | null = null;
  private started = false;
  private readonly roles = new Map<string, string>();

  constructor(private readonly plugin: HarakaPlugin) {
    this.files = new ConfigRegistry(plugin);
    this.config = this.files.ini('shield.ini', SUITE_SCHEMA);
    const c = this.config.current;
    this.storeInUse = c.store;
    this.store = new ResilientStore(
      { warn: (m) => plugin.logwarn(m), info: (m) => plugin.loginfo(m) },
      { prefix: c.store.prefix, timeoutMs: c.store.timeout * 1000, retryAfterMs: c.store.retry_after * 1000, maxInFlight: c.store.max_in_flight },
    );
    this.lists = new SharedLists(this.store);
    // a new [dns] section takes effect for the next query; [store] only at the next start
    this.config.onChange((cfg) => {
      this.resolverInstance = null;
      const was = describeStore(this.storeInUse);
      const now = describeStore(cfg.store);
      if (now !== was && now !== this.storeWarned) {
        this.storeWarned = now;
        plugin.logwarn(`shield.ini [store] changed to ${now}: the store settings apply when Haraka restarts; until then the suite keeps ${was}`);
      }
    });
  }

  private storeWarned = '';

  get mode(): Mode {
    return this.config.current.main.mode;
  }

  get resolver(): Resolver {
    if (!this.resolverInstance) {
      const d = this.config.current.dns;
      this.resolverInstance = new Resolver({
        nameservers: d.nameservers,
        timeoutMs: d.timeout * 1000,
        tries: d.tries,
        cacheSize: d.cache_size,
        minTtl: d.min_ttl,
        maxTtl: d.max_ttl,
        negativeTtl: d.negative_ttl,
      });
    }
    return this.resolverInstance;
  }

  private readonly closers: Array<() => void> = [];
  /** files watched with fs.watchFile (redis.ini) */
  private readonly watched: string[] = [];
  private shutDown = false;

  /** run `fn` when Haraka shuts down (timers, sockets a plugin opened) */
  onShutdown(fn: () => void): void {
    this.closers.push(fn);
  }

  /**
   * Haraka's graceful stop (plugins' shutdown()): once for the suite, whichever shield plugin is
   * asked first: the plugins' timers stop and the store's Redis connection closes, so the process
   * can exit by itself instead of waiting for force_shutdown_timeout.
   */
  async shutdown(): Promise<void> {
    if (this.shutDown) return;
    this.shutDown = true;
    for (const fn of this.closers) {
      try {
        fn();
      } catch (err) {
        this.plugin.logerror(`shutdown: ${String(err)}`);
      }
    }
    for (const f of this.watched) fs.unwatchFile(f);
    await this.store.close();
    this.plugin.loginfo('shield: stopped (store closed)');
  }

  /** connect the store (once, without waiting) */
  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.config.current.store.backend === 'memory') {
      this.plugin.loginfo('shared store: memory (store.backend = memory)');
      return;
    }
    const ini = this.plugin.config.get('redis.ini', 'ini');
    this.store.connect(redisEndpointFromIni(ini));
    this.watchRedisIni();
  }

  /**
   * config/redis.ini applies when Haraka starts. Its own reload callback belongs to whoever else
   * reads it (haraka-plugin-redis), so an edit is noticed by watching the file, and logged once per
   * new content: the store keeps its connection until Haraka restarts.
   */
  private watchRedisIni(): void {
    // Haraka's loader reads the core's defaults (root_path) and the instance's overrides (overrides_path)
    const c = this.plugin.config as { root_path?: unknown; overrides_path?: unknown };
    const files = [...new Set([c.overrides_path, c.root_path].filter((p): p is string => typeof p === 'string'))].map((d) => path.join(d, 'redis.ini'));
    const read = (): string =>
      files
        .map((file) => {
          try {
            return fs.readFileSync(file, 'utf8');
          } catch {
            return '';
          }
        })
        .join('\0');
    const atStart = read();
    let seen = atStart;
    for (const file of files) {
      this.watched.push(file);
      fs.watchFile(file, { interval: 2000, persistent: false }, () => {
        const now = read();
        if (now === seen) return;
        seen = now;
        if (now !== atStart) this.plugin.logwarn(`config/redis.ini changed: it applies when Haraka restarts; until then the suite's store keeps its current Redis connection`);
      });
    }
  }

  /**
   * May a client that reputation checks refuse still write to this recipient? postmaster@ and
   * abuse@ (shield.ini exempt_rcpts) of our domains; of any domain while shield.relay is not loaded.
   */
  exemptRecipient(rcpt: HarakaAddress | null | undefined): boolean {
    const local = this.localDomains;
    return isExemptRecipient(rcpt, this.config.current.main.exempt_rcpts, (d) => (local ? local.isLocal(d) : true));
  }

  /** this plugin takes a suite-wide role (lookup_rdns, the decision step) if no other shield plugin has */
  claim(role: string, pluginName: string): boolean {
    const owner = this.roles.get(role);
    if (owner && owner !== pluginName) return false;
    this.roles.set(role, pluginName);
    return true;
  }
}

/** what the suite's own log lines (summary, session) are logged under: "[shield]" */
const SUITE_LOG = { name: 'shield' };

let suite: Suite | null = null;

export function getSuite(plugin: HarakaPlugin): Suite {
  if (!suite) suite = new Suite(plugin);
  return suite;
}

/** for tests: forget the process-wide suite */
export async function resetSuite(): Promise<void> {
  if (suite) await suite.store.close();
  suite = null;
}

/**
 * What each shield plugin gets from `setupShield` (its `this.shield`): its handle on the process-wide
 * Suite, its connections' Sessions, and the suite's record, decide and hook helpers under its name.
 */
export interface PluginHandle {
  readonly suite: Suite;
  readonly check: string;
  /** the connection's Session */
  session(conn: HarakaConnection): Session;
  record(conn: HarakaConnection, ev: Evidence): void;
  /** decide with the suite's mode, record the decision and log what dry run holds back */
  decide(conn: HarakaConnection, ev: Evidence, actions: OutcomeActions, replies: { reject: Reply; defer: Reply }): Decision;
  /**
   * wrap a hook body: next() once, errors and timeouts caught; `onError` answers faults (default:
   * let the next plugin decide, i.e. a recorded skip)
   */
  hook<A extends unknown[]>(
    name: string,
    body: (conn: HarakaConnection, ...args: A) => Promise<HookOutcome> | HookOutcome,
    onError?: (err: ShieldError, conn: HarakaConnection) => HookOutcome,
  ): (next: Next, conn: HarakaConnection, ...args: A) => void;
}

/**
 * A shield plugin's register(), guarded: a config error at start becomes one log line naming file,
 * section and key with a hint, and Haraka stops with that line, not a stack trace. Anything else is
 * a bug and keeps its stack.
 */
export function registerShield(plugin: HarakaPlugin, body: () => void): void {
  try {
    body();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const line = `${plugin.name}: config error: ${err.message}. Fix the file and start Haraka again (haraka-shield check lists every problem of the instance)`;
    plugin.logcrit(line);
    const quiet = new Error(line);
    quiet.stack = line;
    throw quiet;
  }
}

/**
 * Common set-up for a shield plugin, called from its register(): joins the suite, registers the
 * init hooks that connect the store, the suite's lookup_rdns (once per process) and the summary
 * line at disconnect (once per connection, by whichever shield plugin gets there first).
 */
export function setupShield(plugin: HarakaPlugin, check: string): PluginHandle {
  const s = getSuite(plugin);
  const shield: PluginHandle = {
    suite: s,
    check,
    session: sessionOf,
    record: (conn, ev) => record(plugin, conn, ev),
    decide(conn, ev, actions, replies) {
      const d = decide(ev, actions, s.mode, replies);
      if (d.wouldSend && !d.reply) conn.lognotice(plugin, `dryrun: would answer ${d.wouldSend.code} ${d.wouldSend.status} ${d.wouldSend.text}`);
      // only a fail carries a score: an err is recorded and tagged, never counted
      if (d.action === 'tag') sessionOf(conn).tag(`${ev.check}:${ev.reason}`, ev.outcome === 'fail' ? (ev.score ?? 0) : 0);
      return d;
    },
    hook(name, body, onError) {
      return wrapHook(
        {
          plugin,
          check,
          budgetMs: () => s.config.current.hooks.budget * 1000,
          onError: (err, conn) => {
            const out = onError ? onError(err, conn) : undefined;
            // dry run holds back the fault replies too; relay control always enforces (a fault
            // there must never turn into an accept)
            if (s.mode === 'dryrun' && check !== 'relay' && out && typeof out === 'object' && 'code' in out) {
              conn.lognotice(plugin, `dryrun: would answer ${formatReply(out)}`);
              return undefined;
            }
            return out;
          },
        },
        name,
        body,
      );
    },
  };

  // Haraka ends a hook after the plugin's own timeout with its own 4xx: the suite's budget must
  // end first, so that a slow hook answers as the plugin's onError says
  const checkBudget = (): void => {
    const budget = s.config.current.hooks.budget;
    const t = Number(plugin.timeout ?? 0);
    if (t > 0 && budget >= t) {
      plugin.logwarn(`shield.ini [hooks] budget ${budget}s is not below Haraka's timeout of ${plugin.name} (${t}s, config/plugin_timeout or config/${plugin.name}.timeout): Haraka would end a slow hook first, with its own reply; make budget smaller than ${t}s`);
    }
  };
  checkBudget();
  s.config.onChange(checkBudget);

  // Haraka calls each plugin's shutdown() on a graceful stop
  plugin.shutdown = () => {
    void s.shutdown();
  };

  plugin.shield_init = (next: Next) => {
    s.start();
    next();
  };
  plugin.register_hook('init_master', 'shield_init');
  plugin.register_hook('init_child', 'shield_init');

  // the Session opens before any other hook of the connection (every shield plugin registers this;
  // the first one opens it, the others see the same announcement); a second announcement of the
  // client (another PROXY line, a connect re-run) closes the connection
  plugin.shield_session_open = (next: Next, conn: HarakaConnection) => {
    try {
      const { session, reannounced } = openSession(conn);
      if (reannounced && !session.closed) {
        record(SUITE_LOG, conn, { check: 'session', outcome: 'fail', reason: 'identity_reannounced', data: { announced: conn.remote.ip } });
        conn.lognotice(SUITE_LOG, `client ${session.identity.ipText} announced itself again as ${conn.remote.ip}: 421, closing`);
        void session.close();
        const r = reply(421, '4.7.0', 'The client address may be announced once per connection; closing the connection');
        conn.respond(r.code, toDsn(r), () => conn.disconnect());
      }
    } catch (err) {
      plugin.logerror(`session: ${String(err)}`);
    }
    next();
  };
  plugin.register_hook('connect_init', 'shield_session_open', -1000);

  // the Session closes when the connection does: what it holds is released, the summary logged once
  plugin.shield_session_close = (next: Next, conn: HarakaConnection) => {
    const session = existingSession(conn);
    if (!session || session.summaryLogged) return next();
    session.summaryLogged = true;
    if (session.evidence.length) conn.loginfo(SUITE_LOG, summarize(conn));
    session.close((err) => plugin.logerror(`session close: ${String(err)}`)).then(
      () => next(),
      () => next(),
    );
  };
  plugin.register_hook('disconnect', 'shield_session_close', -1000);

  if (s.claim('decision', plugin.name)) registerDecisionStep(plugin, s, shield);

  if (s.claim('lookup_rdns', plugin.name)) {
    plugin.shield_lookup_rdns = shield.hook(
      'lookup_rdns',
      async (conn): Promise<HookOutcome> => {
        const n = sessionOf(conn);
        // loopback needs no DNS (and a dev box may have none): answer at once
        if (n.identity.isLocal) {
          n.ptr = { status: 'nodata', names: [] };
          return { ok: 'localhost' };
        }
        try {
          const ans = await s.resolver.reverse(n.identity.ipText);
          n.ptr = { status: ans.status, names: ans.records };
          // Haraka's own convention for remote.host when there is no name
          return { ok: ans.records[0] ?? 'NXDOMAIN' };
        } catch {
          n.ptr = { status: 'error', names: [] };
          return { ok: 'DNSERROR' };
        }
      },
      () => ({ ok: 'DNSERROR' }),
    );
    plugin.register_hook('lookup_rdns', 'shield_lookup_rdns');
  }
  return shield;
}

/** "rdns.generic:embeds_address 2, helo.match:mismatch 1" — the findings that weighed most */
function topFindings(session: Session, n = 3): string {
  return session
    .findings()
    .filter((f) => f.score > 0)
    .slice(0, n)
    .map((f) => `${f.tag} ${f.score}`)
    .join(', ');
}

/**
 * The suite's decision step: at connect, RCPT and end of DATA, the scores of the soft findings
 * (tags) are added up and shield.ini [policy] applies: reject_score, defer_score; at end of DATA one
 * X-Shield header sums them up. Hard actions (relay denial, a block entry, a limit) stay with the
 * plugins and happen earlier; evidence that is `err` never has a score. Relay clients,
 * authenticated users and allowlisted clients are never refused on a score, and neither are
 * postmaster@ and abuse@ of our domains: the decision waits for RCPT (none at MAIL), where the
 * recipient is known, and runs before other recipient plugins can accept (priority -10).
 */
function registerDecisionStep(plugin: HarakaPlugin, s: Suite, shield: PluginHandle): void {
  const verdict = (conn: HarakaConnection, stage: 'connect' | 'rcpt' | 'data'): Reply | null => {
    const session = sessionOf(conn);
    if (session.exemption({ privateIps: false })) return null;
    const p = s.config.current.policy;
    const score = session.score;
    const reject = p.reject_score > 0 && score >= p.reject_score;
    const defer = !reject && p.defer_score > 0 && score >= p.defer_score;
    if (!reject && !defer) return null;
    const why = `your score ${score} reached ${reject ? p.reject_score : p.defer_score} (${topFindings(session)})`;
    const r = reject
      ? reply(stage === 'connect' ? 554 : 550, '5.7.1', `Rejected: ${why}`, stage === 'connect')
      : reply(stage === 'connect' ? 421 : 451, '4.7.1', `Deferred: ${why}; please try again later`, stage === 'connect');
    const ev: Evidence = { check: 'policy', outcome: 'fail', reason: reject ? 'reject_score' : 'defer_score', score };
    const d = decide(ev, { fail: reject ? 'reject' : 'defer', err: 'ignore' }, s.mode, { reject: r, defer: r });
    if (!session.evidence.some((e) => e.check === 'policy' && e.reason === ev.reason)) record(SUITE_LOG, conn, ev);
    if (d.wouldSend && !d.reply) conn.lognotice(SUITE_LOG, `dryrun: would answer ${d.wouldSend.code} ${d.wouldSend.status} ${d.wouldSend.text}`);
    return d.reply;
  };

  // at connect no recipient is known: only connect-stage findings can add up here
  plugin.shield_decide_connect = shield.hook('connect', (conn) => verdict(conn, 'connect') ?? undefined);
  plugin.register_hook('connect', 'shield_decide_connect', 90);
  // after every shield check of the recipient (relay -100 ... dnsbl -20), before any plugin that
  // accepts recipients (0) or shield.relay's own late accept (100)
  plugin.shield_decide_rcpt = shield.hook('rcpt', (conn, [rcpt]: [HarakaAddress]) => (s.exemptRecipient(rcpt) ? undefined : (verdict(conn, 'rcpt') ?? undefined)));
  plugin.register_hook('rcpt', 'shield_decide_rcpt', -10);
  plugin.shield_decide_data = shield.hook('data_post', (conn) => {
    const txn = conn.transaction;
    if (!txn) return undefined;
    // the suite's header is the only one: a client's own X-Shield is removed, ours goes on top
    txn.remove_header('X-Shield');
    const session = sessionOf(conn);
    const findings = session.findings();
    if (findings.length) {
      const score = session.score;
      const tagged = s.config.current.policy.tag_score > 0 && score >= s.config.current.policy.tag_score;
      txn.add_leading_header('X-Shield', `score=${score} tagged=${tagged ? 'yes' : 'no'} tags=${findings.map((f) => f.tag).join(',')}`);
    }
    // one reply answers every recipient at DATA: a message that also goes to postmaster@ or abuse@
    // of our domains is never refused on its score (the others were judged at RCPT)
    if (txn.rcpt_to.some((r) => s.exemptRecipient(r))) return undefined;
    return verdict(conn, 'data') ?? undefined;
  });
  plugin.register_hook('data_post', 'shield_decide_data', -10);
}
