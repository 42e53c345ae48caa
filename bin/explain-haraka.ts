/**
 * Just enough of Haraka for `haraka-shield explain` to run the instance's shield plugins on a
 * session that never touches a socket: plugin objects (name, config, register_hook, inherits, log
 * functions), the hook runner (priorities, plugin order, the first non-CONT answer ends a hook;
 * connect_init and disconnect run every plugin), a connection with what the suite reads
 * (HarakaConnection), and Haraka 3.3's mapping of a hook's answer to the SMTP reply
 * (connection.js *_respond). The plugins themselves are the compiled package modules, unchanged.
 */
import { randomUUID } from 'node:crypto';
import constants from 'haraka-constants';
import type { HarakaAddress, HarakaConfig, HarakaConnection, HarakaNotes, HarakaPlugin, HarakaResults, HarakaTransaction, Next } from '../plugins/shield/core/haraka';

export type Level = 'debug' | 'info' | 'notice' | 'warn' | 'error' | 'crit';

export interface LogLine {
  readonly level: Level;
  /** the plugin (or "shield" for the suite) that logged it */
  readonly source: string;
  readonly text: string;
}

/** Haraka's answer to a command, as the client would read it */
export interface SmtpAnswer {
  readonly code: number;
  /** the enhanced status code, when the reply has one */
  readonly status: string | null;
  readonly text: string;
  /** Haraka closes the connection after it */
  readonly disconnect: boolean;
  /** "shield.relay relay_rcpt", or null when no plugin answered (Haraka's default) */
  readonly by: string | null;
}

interface HookEntry {
  readonly plugin: HarakaPlugin;
  readonly method: string;
  readonly priority: number;
  readonly order: number;
}

function text(arg: unknown): string {
  if (typeof arg === 'string') return arg;
  if (arg instanceof Error) return arg.message;
  // a plugin object passed as a log argument: its name, not its hundred properties
  if (arg && typeof arg === 'object' && typeof (arg as { register_hook?: unknown }).register_hook === 'function') return `[${String((arg as { name?: unknown }).name)}]`;
  try {
    return JSON.stringify(arg);
  } catch {
    return String(arg);
  }
}

/** Haraka's results store, reduced to what explain reports: lists appended, other keys replaced */
export class Results implements HarakaResults {
  readonly store: Record<string, Record<string, unknown>> = {};
  add(plugin: { name: string }, obj: Record<string, unknown>): void {
    const r = (this.store[plugin.name] ??= {});
    for (const [k, v] of Object.entries(obj)) {
      if (['pass', 'fail', 'skip', 'err', 'msg'].includes(k)) {
        const list = (r[k] ??= []) as unknown[];
        list.push(v);
      } else r[k] = v;
    }
  }
  get(plugin: string | { name: string }): Record<string, unknown> | undefined {
    return this.store[typeof plugin === 'string' ? plugin : plugin.name];
  }
}

class Transaction implements HarakaTransaction {
  mail_from: HarakaAddress | null = null;
  rcpt_to: HarakaAddress[] = [];
  notes: HarakaNotes = { skip_plugins: [] as string[] };
  results = new Results();
  _relaying?: boolean;
  constructor(readonly uuid: string) {}
  add_header(): void {}
  add_leading_header(): void {}
  remove_header(): void {}
}

export interface ConnectionInit {
  ip: string;
  isPrivate: boolean;
  isLocal: boolean;
  localIp: string;
  localPort: number;
  localHost: string;
  tls: boolean;
}

export class ExplainConnection implements HarakaConnection {
  readonly uuid = randomUUID().toUpperCase();
  readonly remote: HarakaConnection['remote'];
  readonly local: HarakaConnection['local'];
  readonly hello: { host: string | null; verb: string | null } = { host: null, verb: null };
  readonly tls: { enabled: boolean };
  readonly notes: HarakaNotes = {};
  readonly results = new Results();
  transaction: Transaction | null = null;
  /** Haraka counts protocol errors here (shield.limit reads it) */
  errors = 0;
  esmtp = false;
  disconnected = false;
  /** replies a plugin sent itself with respond() */
  readonly sent: SmtpAnswer[] = [];
  private txnCount = 0;
  private relayingFlag = false;

  constructor(
    init: ConnectionInit,
    private readonly log: (level: Level, source: unknown, msg: unknown[]) => void,
  ) {
    this.remote = { ip: init.ip, port: 40000 + Math.floor(Math.random() * 20000), host: null, is_private: init.isPrivate, is_local: init.isLocal };
    this.local = { ip: init.localIp, port: init.localPort, host: init.localHost };
    this.tls = { enabled: init.tls };
  }

  /** as Haraka: set after a transaction started, it applies to that transaction only */
  get relaying(): boolean {
    if (this.transaction && this.transaction._relaying !== undefined) return this.transaction._relaying;
    return this.relayingFlag;
  }
  set relaying(v: boolean) {
    if (this.transaction) this.transaction._relaying = v;
    else this.relayingFlag = v;
  }

  startTransaction(): Transaction {
    this.transaction = new Transaction(`${this.uuid}.${++this.txnCount}`);
    return this.transaction;
  }

  respond(code: number, msg: unknown, cb?: () => void): void {
    this.sent.push({ ...answerText(code, msg), disconnect: false, by: 'respond()' });
    cb?.();
  }
  disconnect(): void {
    this.disconnected = true;
  }
  logdebug(plugin: unknown, ...msg: unknown[]): void {
    this.log('debug', plugin, msg);
  }
  loginfo(plugin: unknown, ...msg: unknown[]): void {
    this.log('info', plugin, msg);
  }
  lognotice(plugin: unknown, ...msg: unknown[]): void {
    this.log('notice', plugin, msg);
  }
  logwarn(plugin: unknown, ...msg: unknown[]): void {
    this.log('warn', plugin, msg);
  }
  logerror(plugin: unknown, ...msg: unknown[]): void {
    this.log('error', plugin, msg);
  }
}

/** code, status and text of a reply; a DSN object (haraka-dsn) carries its own code, as in connection.respond() */
function answerText(code: number, msg: unknown): { code: number; status: string | null; text: string } {
  let c = code;
  let body: unknown = msg;
  if (msg && typeof msg === 'object' && (msg as { constructor?: { name?: string } }).constructor?.name === 'DSN') {
    const dsn = msg as { code: number; reply: string | string[] };
    c = Number(dsn.code);
    body = dsn.reply;
  }
  const line = (Array.isArray(body) ? body.map(String).join(' / ') : String(body ?? '')).trim();
  const m = /^([245]\.\d{1,3}\.\d{1,3}) (.*)$/s.exec(line);
  return m ? { code: c, status: m[1] as string, text: m[2] as string } : { code: c, status: null, text: line };
}

export type Stage = 'connect_init' | 'lookup_rdns' | 'connect' | 'helo' | 'ehlo' | 'mail' | 'rcpt' | 'rcpt_ok' | 'disconnect' | 'init_master';

/**
 * What Haraka 3.3 answers for a hook's result (connection.js: connect_respond, helo_respond,
 * ehlo_respond, mail_respond, rcpt_respond, rcpt_ok_respond). `accepted` is the default text of the
 * positive reply (explain does not reproduce greetings and capability lists).
 */
export function harakaAnswer(stage: 'connect' | 'helo' | 'ehlo' | 'mail' | 'rcpt', retval: number, msg: unknown, by: string | null, accepted: string): SmtpAnswer {
  const c = constants;
  const deny = { connect: 554, helo: 550, ehlo: 550, mail: 550, rcpt: 550 }[stage];
  const soft = { connect: 421, helo: 450, ehlo: 450, mail: 450, rcpt: 450 }[stage];
  const fallback = { connect: ['Your mail is not welcome here', 'Come back later'], helo: ['HELO denied', 'HELO denied'], ehlo: ['EHLO denied', 'EHLO denied'], mail: [`${accepted} denied`, `${accepted} denied`], rcpt: [`${accepted} denied`, `${accepted} denied`] }[stage];
  const reply = (code: number, dflt: string, disconnect: boolean): SmtpAnswer => ({ ...answerText(code, msg || dflt), disconnect, by });
  switch (retval) {
    case c.deny:
      return reply(deny, fallback[0] as string, false);
    case c.denydisconnect:
    case c.disconnect:
      // (DISCONNECT at helo/mail/rcpt is not a refusal in Haraka; no shield plugin answers it)
      return reply(deny, fallback[0] as string, true);
    case c.denysoft:
      return reply(soft, fallback[1] as string, false);
    case c.denysoftdisconnect:
      return reply(soft, fallback[1] as string, true);
    default:
      return { code: stage === 'connect' ? 220 : 250, status: null, text: typeof msg === 'string' && msg ? msg : stage === 'mail' || stage === 'rcpt' ? `${accepted} OK` : accepted, disconnect: false, by };
  }
}

/** Haraka's plugin loader and hook runner, for the plugins explain loads */
export class MiniHaraka {
  readonly logs: Array<LogLine & { seq: number }> = [];
  private readonly hooks = new Map<string, HookEntry[]>();
  private order = 0;
  private seq = 0;

  constructor(private readonly config: HarakaConfig) {}

  log(level: Level, source: unknown, msg: unknown[]): void {
    const name = source && typeof source === 'object' && typeof (source as { name?: unknown }).name === 'string' ? (source as { name: string }).name : typeof source === 'string' ? source : text(source);
    this.logs.push({ level, source: name, text: msg.map(text).join(' '), seq: this.seq++ });
  }

  /** a plugin object as Haraka builds one: its module's exports copied onto it */
  plugin(name: string, exportsObj: Record<string, unknown> = {}): HarakaPlugin {
    const timeout = (() => {
      for (const f of [`${name}.timeout`, 'plugin_timeout']) {
        const v = parseFloat(String(this.config.get(f) ?? ''));
        if (!Number.isNaN(v)) return v;
      }
      return 30;
    })();
    const log = (level: Level) => (...msg: unknown[]) => this.log(level, name, msg);
    const p: HarakaPlugin = {
      ...exportsObj,
      name,
      timeout,
      config: this.config,
      hooks: {},
      register_hook: (hook: string, method: string, priority?: number) => {
        let pr = parseInt(String(priority), 10) || 0;
        pr = Math.max(-100, Math.min(100, pr));
        const list = this.hooks.get(hook) ?? [];
        list.push({ plugin: p, method, priority: pr, order: this.order++ });
        list.sort((a, b) => a.priority - b.priority || a.order - b.order);
        this.hooks.set(hook, list);
      },
      inherits: () => undefined,
      logdebug: log('debug'),
      loginfo: log('info'),
      lognotice: log('notice'),
      logwarn: log('warn'),
      logerror: log('error'),
      logcrit: log('crit'),
    };
    return p;
  }

  /** register() first, then every hook_* method, as Haraka's _register_plugin does */
  register(p: HarakaPlugin): void {
    const reg = p.register;
    if (typeof reg === 'function') (reg as (this: HarakaPlugin) => void).call(p);
    for (const key of Object.keys(p)) {
      const m = /^hook_(\w+)\b/.exec(key);
      if (m && typeof p[key] === 'function') p.register_hook(m[1] as string, key);
    }
  }

  registered(hook: string): ReadonlyArray<{ plugin: string; method: string; priority: number }> {
    return (this.hooks.get(hook) ?? []).map((e) => ({ plugin: e.plugin.name, method: e.method, priority: e.priority }));
  }

  /**
   * Run one hook as plugins.run_hooks does: each method in turn, the first answer other than CONT
   * ends it (connect_init, disconnect and init_* run every method); a method that throws counts as
   * CONT, one that does not answer within its plugin's timeout as DENYSOFT "plugin timeout".
   */
  async run(hook: string, conn: ExplainConnection | null, params?: unknown): Promise<{ retval: number; msg: unknown; by: string | null }> {
    const runsAll = hook === 'connect_init' || hook === 'disconnect' || hook.startsWith('init_');
    for (const e of this.hooks.get(hook) ?? []) {
      if (conn?.disconnected && hook !== 'disconnect') break;
      const skip = conn?.transaction?.notes.skip_plugins;
      if (Array.isArray(skip) && skip.includes(e.plugin.name)) continue;
      const fn = e.plugin[e.method];
      if (typeof fn !== 'function') {
        this.log('crit', e.plugin.name, [`${hook}: no method ${e.method}`]);
        continue;
      }
      const { retval, msg } = await new Promise<{ retval: number; msg: unknown }>((resolve) => {
        let done = false;
        const timer = e.plugin.timeout
          ? setTimeout(() => {
              this.log('crit', e.plugin.name, [`timed out on hook ${hook}`]);
              finish(constants.denysoft, 'plugin timeout');
            }, e.plugin.timeout * 1000)
          : null;
        function finish(retval?: number, msg?: unknown): void {
          if (done) return;
          done = true;
          if (timer) clearTimeout(timer);
          resolve({ retval: retval || constants.cont, msg });
        }
        const next: Next = (code, m) => finish(code, m);
        try {
          (fn as (this: HarakaPlugin, next: Next, ...args: unknown[]) => void).call(e.plugin, next, ...(conn ? [conn] : []), ...(params === undefined ? [] : [params]));
        } catch (err) {
          this.log('crit', e.plugin.name, [`${hook} failed:`, err]);
          finish();
        }
      });
      if (retval !== constants.cont && !runsAll) return { retval, msg, by: `${e.plugin.name} ${e.method}` };
    }
    return { retval: constants.cont, msg: undefined, by: null };
  }
}
