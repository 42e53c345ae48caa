/**
 * `haraka-shield explain --ip A [--helo H] [--from F] [--rcpt R]... [--port P] [--auth USER] [--json]`
 *
 * What a session with these values would get from this instance's shield plugins, stage by stage:
 * each check's evidence and score, and the reply. It loads the plugins enabled in config/plugins
 * from this package's compiled modules, with the instance's config, the configured resolver and the
 * store, and runs their hooks as Haraka would (explain-haraka.ts), without a socket and without
 * DATA. Nothing it does changes the store: writes go to a scratch copy (explain-store.ts), so limits
 * are judged on the fleet's real counts and none of them is consumed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import constants from 'haraka-constants';
import { Address } from '@haraka/email-address';
import { errorMessage } from '../plugins/shield/core/errors';
import type { HarakaAddress, HarakaConfig, HarakaPlugin } from '../plugins/shield/core/haraka';
import { parseIp } from '../plugins/shield/core/net';
import type { Evidence } from '../plugins/shield/core/results';
import { summarize } from '../plugins/shield/core/results';
import { existingSession } from '../plugins/shield/core/session';
import { createRedisClient, describeEndpoint, redisEndpointFromIni, withTimeout, type RedisClient } from '../plugins/shield/core/shared-store';
import { getSuite, type Suite } from '../plugins/shield/core/suite';
import { ExplainConnection, MiniHaraka, harakaAnswer, type LogLine, type SmtpAnswer } from './explain-haraka';
import { sandbox, type ScratchStore } from './explain-store';
import { CliError } from './list-commands';

const PKG_ROOT = path.resolve(__dirname, '..');

export const EXPLAIN_USAGE = `usage:
  haraka-shield explain --ip IP [--helo NAME] [--from ADDRESS] [--rcpt ADDRESS]... [--port PORT] [--auth USER] [--tls] [--json] [--config DIR]
what a session with these values would get from this instance's shield plugins, stage by stage
(evidence, scores, replies), with its config, resolver and store; no mail is sent and no limit is used up.
options:
  --ip IP         the client's address (IPv4 or IPv6)
  --helo NAME     the HELO/EHLO name (needed for --from)
  --from ADDRESS  the MAIL FROM address; <> for the null sender (needed for --rcpt)
  --rcpt ADDRESS  a RCPT TO address; repeat for more recipients
  --port PORT     the local port the client connects to (default 25; 587/465 need --auth)
  --auth USER     the session authenticated as USER (after EHLO; implies --tls)
  --tls           the session uses STARTTLS
  --json          one JSON object instead of text
  --config DIR    the Haraka instance (default: $HARAKA, else the current directory)`;

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

export interface ExplainOptions {
  dir: string;
  ip: string;
  helo: string | null;
  from: string | null;
  rcpts: string[];
  port: number;
  auth: string | null;
  tls: boolean;
  json: boolean;
}

export interface StageReport {
  /** connect, helo, ehlo, auth, mail, rcpt */
  readonly stage: string;
  /** what the client sent: the HELO name, the address */
  readonly arg: string | null;
  readonly evidence: Evidence[];
  readonly reply: SmtpAnswer;
  /** replies dry run held back ("dryrun: would answer ...") */
  readonly heldBack: string[];
  readonly log: LogLine[];
}

export interface ExplainReport {
  readonly instance: string;
  readonly client: { ip: string; port: number; helo: string | null; from: string | null; rcpts: string[]; auth: string | null; tls: boolean };
  readonly mode: string;
  readonly plugins: string[];
  /** enabled in config/plugins but not run by explain (only shield plugins are) */
  readonly notRun: string[];
  /** warnings and errors the plugins logged while loading (config problems, skipped list lines) */
  readonly warnings: LogLine[];
  readonly store: { backend: 'redis' | 'memory'; where: string | null; prefix: string; note: string | null; withheld: string[] };
  readonly dns: string[];
  readonly stages: StageReport[];
  /** stages the session did not reach after a refusal or a disconnect */
  readonly notReached: string[];
  readonly outcome: 'accepted' | 'refused' | 'deferred' | 'partly accepted';
  readonly summary: string;
  readonly score: number;
  readonly findings: Array<{ tag: string; score: number }>;
  readonly results: Record<string, Record<string, unknown>>;
}

const OPTIONS = {
  ip: { type: 'string' },
  helo: { type: 'string' },
  from: { type: 'string' },
  rcpt: { type: 'string', multiple: true },
  port: { type: 'string' },
  auth: { type: 'string' },
  tls: { type: 'boolean' },
  json: { type: 'boolean' },
  config: { type: 'string' },
  help: { type: 'boolean' },
} as const;

function readArgs(argv: string[]): ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS; allowPositionals: true }>> {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  } catch (err) {
    // node's wording, first sentence: "Unknown option '--x'. To specify a positional ..." -> "unknown option '--x'"
    const first = (errorMessage(err).split('\n')[0] ?? '').split(/\.\s/)[0] ?? '';
    throw new CliError(`explain: ${first.charAt(0).toLowerCase()}${first.slice(1)}`);
  }
}

function parseOptions(argv: string[]): ExplainOptions {
  const parsed = readArgs(argv);
  const v = parsed.values;
  if (parsed.positionals.length) throw new CliError(`explain: unexpected argument ${parsed.positionals[0]} (options: --ip, --helo, --from, --rcpt, --port, --auth, --tls, --json, --config)`);
  if (v.ip === undefined) throw new CliError('explain: --ip is required (the client address)');
  const ip = v.ip.trim();
  if (!parseIp(ip)) throw new CliError(`explain: --ip ${JSON.stringify(v.ip)} is not an IPv4 or IPv6 address`);
  const helo = v.helo ?? null;
  if (helo !== null && (!helo || /[\s\x00-\x1f\x7f]/.test(helo))) throw new CliError(`explain: --helo ${JSON.stringify(helo)}: one word, as the client sends it`);
  const rcpts = v.rcpt ?? [];
  if (v.from !== undefined && helo === null) throw new CliError('explain: --from needs --helo (Haraka answers MAIL before HELO with 503)');
  if (rcpts.length && v.from === undefined) throw new CliError('explain: --rcpt needs --from (Haraka answers RCPT before MAIL with 503)');
  const portText = v.port ?? '25';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) throw new CliError(`explain: --port ${JSON.stringify(portText)} is not a port number`);
  const auth = v.auth ?? null;
  if (auth !== null && (!auth || /[\x00-\x1f\x7f]/.test(auth))) throw new CliError('explain: --auth needs a user name');
  if (auth !== null && helo === null) throw new CliError('explain: --auth needs --helo (AUTH comes after EHLO)');
  for (const [opt, a] of [...(v.from !== undefined ? [['--from', v.from]] : []), ...rcpts.map((r) => ['--rcpt', r])] as Array<[string, string]>) parseAddress(opt, a);
  if (rcpts.some((r) => parseAddress('--rcpt', r).isNull())) throw new CliError('explain: --rcpt <> is not a recipient');
  return {
    dir: path.resolve(v.config ?? process.env.HARAKA ?? process.cwd()),
    ip,
    helo,
    from: v.from ?? null,
    rcpts,
    port,
    auth,
    tls: !!v.tls || auth !== null,
    json: !!v.json,
  };
}

/** the address as Haraka builds it from MAIL FROM:<...> / RCPT TO:<...> */
function parseAddress(opt: string, text: string): Address & HarakaAddress {
  const t = text.trim();
  try {
    return new Address(t.startsWith('<') ? t : `<${t}>`) as unknown as Address & HarakaAddress;
  } catch (err) {
    throw new CliError(`explain: ${opt} ${JSON.stringify(text)}: ${errorMessage(err)}`);
  }
}

/** config/plugins in order: the shield plugins explain runs and the others it does not */
function enabledPlugins(config: HarakaConfig): { shield: string[]; others: string[] } {
  const lines = (config.get('plugins', 'list') as string[] | null) ?? [];
  const names = lines.map((l) => String(l).replace(/#.*/, '').trim()).filter(Boolean);
  return { shield: names.filter((n) => /^shield\.[a-z0-9_-]+$/.test(n)), others: names.filter((n) => !/^shield\./.test(n)) };
}

interface StoreSetup {
  scratch: ScratchStore | null;
  client: RedisClient | null;
  backend: 'redis' | 'memory';
  where: string | null;
  note: string | null;
}

/**
 * Connect the suite's store as the server would, but through the scratch layer. Redis that does not
 * answer leaves this process on its own memory, which is said in the report.
 */
async function openStore(suite: Suite, config: HarakaConfig): Promise<StoreSetup> {
  const st = suite.config.current.store;
  if (st.backend === 'memory') {
    return { scratch: null, client: null, backend: 'memory', where: null, note: '[store] backend = memory: each Haraka process counts in its own memory, which explain cannot see; limits start from zero here' };
  }
  const ep = redisEndpointFromIni(config.get('redis.ini', 'ini'));
  const where = describeEndpoint(ep);
  const client = createRedisClient(ep, { reconnect: false, connectTimeoutMs: 2000 });
  let lastError = '';
  client.on('error', (e: unknown) => (lastError = errorMessage(e)));
  // attached before it connects: the store never sees Redis without the scratch layer
  const scratch = sandbox(suite.store, client, st.prefix);
  try {
    await withTimeout(client.connect(), 2500, () => new Error('timed out'));
    // the store uses Redis once its first PING answers (its circuit breaker)
    if (!(await suite.store.whenUp(2500))) throw new Error('connected, but no answer to PING');
    return { scratch, client, backend: 'redis', where, note: null };
  } catch (err) {
    return {
      scratch: null,
      client,
      backend: 'memory',
      where,
      note: `Redis at ${where} unavailable (${lastError || errorMessage(err)}): this run used its own memory, as the server does while Redis is down; the fleet's limits, shared block entries and cached answers were not seen`,
    };
  }
}

/** the suite's own log lines that are bookkeeping rather than explanation */
const QUIET = /^(shared store: |list files: |relay networks: |limit overrides: )/;

async function run(opts: ExplainOptions): Promise<ExplainReport> {
  if (!fs.existsSync(path.join(opts.dir, 'config'))) throw new CliError(`${opts.dir} is not a Haraka instance (no config/ directory); use --config DIR`);
  const hc = require('haraka-config') as { module_config(p: string): HarakaConfig };
  const config = hc.module_config(opts.dir);
  const { shield, others } = enabledPlugins(config);
  if (!shield.length) throw new CliError(`config/plugins of ${opts.dir} enables no shield plugin: nothing to explain`);
  const modules = shield.map((name) => {
    const file = path.join(PKG_ROOT, 'plugins', `${name}.js`);
    if (!fs.existsSync(file)) throw new CliError(`config/plugins enables ${name}, which this haraka-shield does not have (${file})`);
    return { name, file };
  });

  const haraka = new MiniHaraka(config);
  // the suite first (shield.ini), so the store is under the scratch layer before any plugin loads
  let suite: Suite;
  try {
    suite = getSuite(haraka.plugin('shield'));
  } catch (err) {
    throw new CliError(errorMessage(err));
  }
  const store = await openStore(suite, config);
  try {
    const loaded: Array<{ plugin: HarakaPlugin; module: Record<string, unknown> }> = [];
    for (const m of modules) {
      const module = require(m.file) as Record<string, unknown>;
      const plugin = haraka.plugin(m.name, module);
      try {
        haraka.register(plugin);
      } catch (err) {
        throw new CliError(`${m.name}: ${errorMessage(err)}`);
      }
      loaded.push({ plugin, module });
    }
    await haraka.run('init_master', null);
    await warmUp(loaded);
    const warnings = haraka.logs.filter((l) => ['warn', 'error', 'crit'].includes(l.level) && !QUIET.test(l.text)).map(({ level, source, text }) => ({ level, source, text }));

    // haraka-tld (under haraka-net-utils) prints its table sizes on stdout unless told not to
    process.env.HARAKA_LOGS_SUPPRESS ??= '1';
    const netUtils = require('haraka-net-utils') as { is_local_ip(ip: string): boolean; is_private_ip(ip: string): boolean };
    const isLocal = netUtils.is_local_ip(opts.ip);
    const smtp = (config.get('smtp.ini', 'ini') ?? {}) as { main?: { public_ip?: string; listen?: string } };
    const listenHost = String(smtp.main?.listen ?? '').split(',')[0]?.replace(/:\d+$/, '').replace(/^\[|\]$/g, '') ?? '';
    const localIp = smtp.main?.public_ip || (parseIp(listenHost) && !/^(0\.0\.0\.0|::)$/.test(listenHost) ? listenHost : '127.0.0.1');
    const localHost = String(config.get('me') ?? '').trim() || os.hostname();
    const conn = new ExplainConnection(
      { ip: opts.ip, isLocal, isPrivate: isLocal || netUtils.is_private_ip(opts.ip), localIp, localPort: opts.port, localHost, tls: opts.tls },
      (level, source, msg) => haraka.log(level, source, msg),
    );
    const stages = await session(haraka, conn, opts);
    const notReached = stagesNotReached(opts, stages);
    await haraka.run('disconnect', conn);
    const s = existingSession(conn);
    const results = { ...conn.results.store };
    return {
      instance: opts.dir,
      client: { ip: opts.ip, port: opts.port, helo: opts.helo, from: opts.from, rcpts: opts.rcpts, auth: opts.auth, tls: opts.tls },
      mode: suite.mode,
      plugins: shield,
      notRun: others,
      warnings,
      store: { backend: store.backend, where: store.where, prefix: suite.config.current.store.prefix, note: store.note, withheld: store.scratch?.withheld ?? [] },
      dns: [...suite.config.current.dns.nameservers],
      stages,
      notReached,
      outcome: outcomeOf(stages, notReached),
      summary: summarize(conn),
      score: s?.score ?? 0,
      findings: s?.findings() ?? [],
      results,
    };
  } finally {
    try {
      await store.scratch?.discard();
    } catch {
      /* the copies expire with their TTLs */
    }
    await suite.store.close();
  }
}

/**
 * Bring the plugins to where a running server's are: what they start at load without waiting for
 * it (shield.blocklist's first read of the shared entries, shield.dnsbl's read of the fleet's zone
 * health verdicts) is run to the end here, with the plugins' own code. A server that has run for a
 * while has done both; a zone the fleet disabled must not list a client in explain.
 */
async function warmUp(loaded: ReadonlyArray<{ plugin: HarakaPlugin; module: Record<string, unknown> }>): Promise<void> {
  for (const { plugin, module } of loaded) {
    const sync = module.sync;
    if (typeof sync === 'function' && 'syncing' in plugin) {
      // the sync started by register() must end first (a second call while it runs returns at once)
      for (let i = 0; i < 500 && plugin.syncing; i++) await new Promise((r) => setTimeout(r, 5));
      await (sync as (p: HarakaPlugin) => Promise<void>)(plugin);
    }
    const health = plugin.health as { read?: () => Promise<void> } | undefined;
    if (health && typeof health.read === 'function') await health.read().catch(() => undefined);
  }
}

/** stages that follow a refusal that ends the session (connect, HELO, MAIL) or a disconnect */
function stagesNotReached(opts: ExplainOptions, stages: StageReport[]): string[] {
  const planned = [
    'connect',
    ...(opts.helo !== null ? [`ehlo ${opts.helo}`] : []),
    ...(opts.auth !== null ? [`auth ${opts.auth}`] : []),
    ...(opts.from !== null ? [`mail ${parseAddress('--from', opts.from).format()}`] : []),
    ...opts.rcpts.map((r) => `rcpt ${parseAddress('--rcpt', r).format()}`),
  ];
  return planned.slice(stages.length);
}

function outcomeOf(stages: StageReport[], notReached: string[]): ExplainReport['outcome'] {
  const refused = stages.filter((s) => s.reply.code >= 400);
  if (!refused.length && !notReached.length) return 'accepted';
  const rcpts = stages.filter((s) => s.stage === 'rcpt');
  if (!notReached.length && refused.every((s) => s.stage === 'rcpt') && rcpts.some((s) => s.reply.code < 400)) return 'partly accepted';
  return refused.some((s) => s.reply.code >= 500) ? 'refused' : 'deferred';
}

/** the session, stage by stage, as Haraka's connection.js drives it */
async function session(haraka: MiniHaraka, conn: ExplainConnection, opts: ExplainOptions): Promise<StageReport[]> {
  const stages: StageReport[] = [];
  let evSeen = 0;
  let logSeen = haraka.logs.length;
  let sentSeen = 0;
  const collect = (stage: string, arg: string | null, reply: SmtpAnswer): StageReport => {
    const ev = existingSession(conn)?.evidence ?? [];
    const log = haraka.logs.slice(logSeen).map(({ level, source, text }) => ({ level, source, text }));
    logSeen = haraka.logs.length;
    // a reply a plugin sent itself (respond()) is the one the client saw
    const sent = conn.sent.slice(sentSeen);
    sentSeen = conn.sent.length;
    const r: StageReport = {
      stage,
      arg,
      evidence: ev.slice(evSeen),
      reply: sent[0] ? { ...sent[0], disconnect: conn.disconnected } : reply,
      heldBack: log.map((l) => /^dryrun: would answer (.*)$/.exec(l.text)?.[1]).filter((x): x is string => !!x),
      log: log.filter((l) => !QUIET.test(l.text)),
    };
    evSeen = ev.length;
    stages.push(r);
    return r;
  };
  const ends = (r: StageReport): boolean => r.reply.disconnect || conn.disconnected;

  // connect_init (every plugin), lookup_rdns, connect
  await haraka.run('connect_init', conn);
  const rdns = await haraka.run('lookup_rdns', conn);
  if (rdns.retval === constants.ok) conn.remote.host = String(rdns.msg ?? '') || 'Unknown';
  let res = rdns.retval === constants.ok || rdns.by === null ? await haraka.run('connect', conn) : rdns;
  const connect = collect('connect', null, harakaAnswer('connect', res.retval, res.msg, res.by, `${conn.local.host} ESMTP ready`));
  if (connect.reply.code >= 400 || ends(connect)) return stages;
  if (opts.helo === null) return stages;

  // EHLO (a new HELO resets the transaction)
  conn.hello.verb = 'EHLO';
  conn.hello.host = opts.helo;
  conn.transaction = null;
  res = await haraka.run('ehlo', conn, opts.helo);
  const ehlo = collect('ehlo', opts.helo, harakaAnswer('ehlo', res.retval, res.msg, res.by, `${conn.local.host} Hello ${conn.remote.host && !/^(NXDOMAIN|DNSERROR)$/.test(conn.remote.host) ? `${conn.remote.host} ` : ''}[${conn.remote.ip}]`));
  if (ehlo.reply.code >= 400 || ends(ehlo)) return stages;
  conn.esmtp = true;

  // AUTH as Haraka's auth_base records a success (the password is not checked)
  if (opts.auth !== null) {
    conn.relaying = true;
    conn.results.add({ name: 'relay' }, { pass: 'explain --auth' });
    conn.results.add({ name: 'auth' }, { pass: 'explain --auth', method: 'PLAIN', user: opts.auth });
    conn.notes.auth_user = opts.auth;
    collect('auth', opts.auth, { code: 235, status: '2.7.0', text: 'Authentication successful (explain --auth: no password is checked)', disconnect: false, by: null });
  }
  if (opts.from === null) return stages;

  // MAIL: Haraka itself requires AUTH on 587 and 465, before any plugin
  const from = parseAddress('--from', opts.from);
  if (!conn.relaying && [587, 465].includes(conn.local.port)) {
    conn.errors++;
    collect('mail', from.format(), { code: 550, status: null, text: 'Authentication required', disconnect: false, by: 'Haraka (port 587/465 without AUTH)' });
    return stages;
  }
  const txn = conn.startTransaction();
  txn.mail_from = from;
  res = await haraka.run('mail', conn, [from, {}]);
  const mail = collect('mail', from.format(), harakaAnswer('mail', res.retval, res.msg, res.by, `sender ${from.format()}`));
  if (mail.reply.code >= 400 || ends(mail)) return stages;

  for (const text of opts.rcpts) {
    const rcpt = parseAddress('--rcpt', text);
    txn.rcpt_to.push(rcpt);
    res = await haraka.run('rcpt', conn, [rcpt, {}]);
    const dmsg = `recipient ${rcpt.format()}`;
    let answer: SmtpAnswer;
    if (res.retval === constants.cont && conn.relaying) res = { ...res, retval: constants.ok };
    if (res.retval === constants.ok) {
      const ok = await haraka.run('rcpt_ok', conn, rcpt);
      answer = harakaAnswer('rcpt', ok.retval === constants.ok ? constants.cont : ok.retval, ok.by ? ok.msg : res.msg, ok.by ?? res.by, dmsg);
    } else if (res.retval === constants.cont) {
      // no plugin took the recipient: Haraka refuses it (another rcpt plugin of config/plugins may accept it)
      answer = { code: 550, status: null, text: `I cannot deliver mail for ${rcpt.format()}`, disconnect: false, by: 'Haraka: no plugin explain runs accepted the recipient' };
    } else answer = harakaAnswer('rcpt', res.retval, res.msg, res.by, dmsg);
    const r = collect('rcpt', rcpt.format(), answer);
    if (r.reply.code >= 400) txn.rcpt_to.pop();
    if (ends(r)) break;
  }
  return stages;
}

function evidenceLine(e: Evidence): string {
  const data = e.data && Object.keys(e.data).length ? ` ${JSON.stringify(e.data)}` : '';
  const score = e.score !== undefined ? ` (score ${e.score})` : '';
  return `  ${e.check.padEnd(18)} ${e.outcome.padEnd(4)} ${e.reason}${score}${data}`;
}

function replyLine(r: SmtpAnswer): string {
  const status = r.status ? `${r.status} ` : '';
  const by = r.by ? `   [${r.by}]` : '';
  return `  -> ${r.code} ${status}${r.text}${r.disconnect ? ' (and closes the connection)' : ''}${by}`;
}

function printText(rep: ExplainReport, io: Io): void {
  const c = rep.client;
  io.out(`explain ${c.ip} port ${c.port}${c.tls ? ' tls' : ''}${c.auth ? ` auth ${c.auth}` : ''} against ${rep.instance}`);
  io.out(`mode: ${rep.mode}${rep.mode === 'dryrun' ? ' (refusals are logged, not sent, except relay control)' : ''}`);
  io.out(`plugins: ${rep.plugins.join(', ')}${rep.notRun.length ? `; not run: ${rep.notRun.join(', ')}` : ''}`);
  io.out(`store: ${rep.store.backend === 'redis' ? `${rep.store.where} prefix ${rep.store.prefix} (read; explain's writes go to a scratch copy, deleted at exit)` : 'memory'}`);
  if (rep.store.note) io.out(`store: ${rep.store.note}`);
  io.out(`dns: ${rep.dns.length ? rep.dns.join(', ') : 'the system resolver (/etc/resolv.conf)'}`);
  for (const s of rep.stages) {
    io.out('');
    io.out(`${s.stage}${s.arg !== null ? ` ${s.arg}` : ''}`);
    for (const e of s.evidence) io.out(evidenceLine(e));
    for (const h of s.heldBack) io.out(`  dry run held back: ${h}`);
    for (const l of s.log.filter((x) => ['notice', 'warn', 'error', 'crit'].includes(x.level) && !/^dryrun: would answer/.test(x.text))) io.out(`  log ${l.level} [${l.source}] ${l.text}`);
    io.out(replyLine(s.reply));
  }
  for (const n of rep.notReached) {
    io.out('');
    io.out(`${n}: not reached`);
  }
  if (rep.store.withheld.length) {
    io.out('');
    for (const w of rep.store.withheld) io.out(`not written to the store: ${w}`);
  }
  io.out('');
  io.out(`outcome: ${rep.outcome}`);
  io.out(`score: ${rep.score}${rep.findings.length ? ` (${rep.findings.map((f) => `${f.tag} ${f.score}`).join(', ')})` : ''}`);
  io.out(`summary: ${rep.summary}`);
}

/** Run `explain ...`; returns the exit code (0: explained, whatever the outcome). */
export async function explainCommand(argv: string[], io: Io): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(EXPLAIN_USAGE);
    return 0;
  }
  const opts = parseOptions(argv);
  const rep = await run(opts);
  if (opts.json) io.out(JSON.stringify(rep, null, 2));
  else printText(rep, io);
  return 0;
}

if (require.main === module) {
  const io = { out: (l: string) => console.log(l), err: (l: string) => console.error(`haraka-shield: ${l}`) };
  explainCommand(process.argv.slice(2), io).then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof CliError) io.err(err.message);
      else console.error(err);
      process.exit(1);
    },
  );
}
