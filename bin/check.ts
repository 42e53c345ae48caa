/**
 * `haraka-shield check [--config DIR] [--json]`: load every shield config file of a Haraka instance
 * exactly as the plugins would (the same loader, schemas and list parsers) and report every problem
 * at once, as `nginx -t` or `postconf` do: errors (Haraka would refuse to start, or an entry would be
 * skipped) and warnings (a setting that works but is probably not what the operator means).
 * Exit 0 without errors, 1 with any.
 */
import fs from 'node:fs';
import path from 'node:path';
import { configFilePaths, lintIni, parseConfig, parseLines, type RawValue, type Schema } from '../plugins/shield/core/config';
import { ConfigError, errorMessage } from '../plugins/shield/core/errors';
import type { HarakaConfig } from '../plugins/shield/core/haraka';
import { listFileEntries, reasonLooksLikeEntry } from '../plugins/shield/core/list-entries';
import { cidrItem, parseCidr, type Cidr } from '../plugins/shield/core/net';
import { SUITE_SCHEMA } from '../plugins/shield/core/suite';
import { BLOCKLIST_SCHEMA } from '../plugins/shield/checks/blocklist-config';
import { DNSBL_FILE, parseDnsblConfig } from '../plugins/shield/checks/dnsbl-config';
import { LIMIT_SCHEMA } from '../plugins/shield/checks/limit-config';
import { parseOverrideLine } from '../plugins/shield/checks/limits';
import { RDNS_SCHEMA } from '../plugins/shield/checks/rdns-config';
import { RELAY_SCHEMA, domainItem } from '../plugins/shield/checks/relay-config';
import { CliError } from './args';
import { enabledPlugins, instanceReader, planStockImport, stockConflicts } from './import-stock';

export const CHECK_USAGE = `usage: haraka-shield check [--config DIR] [--json]
  loads every shield config file of the Haraka instance DIR (default: $HARAKA, else .) as the
  plugins would and reports every error and warning; exit 0 when there is no error`;

export interface Finding {
  readonly level: 'error' | 'warning';
  /** "shield.relay.ini [main] networks" or "config/plugins" */
  readonly where: string;
  readonly message: string;
}

type Ini = Record<string, Record<string, RawValue>>;

/** the instance as the plugins see it: Haraka's config loader rooted at DIR/config */
function loader(dir: string): HarakaConfig {
  const hc = require('haraka-config') as { module_config(p: string): HarakaConfig };
  return hc.module_config(dir);
}

function splitWhere(err: ConfigError): Finding {
  const where = [err.file, err.section ? `[${err.section}]` : '', err.key ?? ''].filter(Boolean).join(' ');
  return { level: 'error', where, message: err.message.slice(where.length + 2) };
}

/** Haraka's config loader prints some problems on stdout ("Invalid line"); they are reported here, and stdout stays ours (--json) */
function quietly<T>(fn: () => T): T {
  const log = console.log;
  console.log = () => undefined;
  try {
    return fn();
  } finally {
    console.log = log;
  }
}

/** the shield plugins this package ships, by the built adapters next to the CLI */
function shippedPlugins(): string[] {
  const dir = path.resolve(__dirname, '..', 'plugins');
  return fs
    .readdirSync(dir)
    .filter((f) => /^shield\.[a-z0-9_-]+\.(js|ts)$/.test(f))
    .map((f) => f.replace(/\.(js|ts)$/, ''))
    .filter((v, i, a) => a.indexOf(v) === i)
    .sort();
}

/** Haraka's timeout for a plugin: config/<name>.timeout, else config/plugin_timeout, else 30 s (0 = none) */
function harakaTimeout(config: HarakaConfig, name: string): number {
  for (const file of [`${name}.timeout`, 'plugin_timeout']) {
    const v = parseFloat(String(config.get(file, 'value') ?? ''));
    if (!Number.isNaN(v)) return v;
  }
  return 30;
}

/** relay networks that open too much, or that another network already covers */
function relayNetworkFindings(networks: ReadonlyArray<{ cidr: Cidr; where: string }>): Finding[] {
  const out: Finding[] = [];
  // ranges that together cover a whole address family are an open relay too (0.0.0.0/1 + 128.0.0.0/1)
  for (const family of [4, 6] as const) {
    const bits = family === 4 ? 32 : 128;
    const ranges = networks
      .filter((n) => n.cidr.family === family && n.cidr.prefix > 0)
      .map((n) => {
        const start = n.cidr.bytes.reduce((a, b) => (a << 8n) + BigInt(b), 0n);
        return [start, start + (1n << BigInt(bits - n.cidr.prefix))] as const;
      })
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let reach = 0n;
    for (const [a, b] of ranges) {
      if (a > reach) break;
      if (b > reach) reach = b;
    }
    if (ranges.length > 1 && reach === 1n << BigInt(bits)) {
      out.push({ level: 'error', where: 'shield.relay.ini [main] networks', message: `the relay networks together cover every ${family === 4 ? 'IPv4' : 'IPv6'} address: an open relay` });
    }
  }
  for (const { cidr: c, where } of networks) {
    if (c.prefix === 0) {
      out.push({ level: 'error', where, message: `${c.cidr} makes every ${c.family === 4 ? 'IPv4' : 'IPv6'} address a relay client: an open relay` });
    } else if ((c.family === 4 && c.prefix < 8) || (c.family === 6 && c.prefix < 32)) {
      out.push({ level: 'warning', where, message: `${c.cidr} is very broad (more than ${c.family === 4 ? 'a /8' : 'a /32'}): every address in it may relay through this server` });
    }
  }
  // the first outer.prefix bits of both are equal
  const contains = (outer: Cidr, inner: Cidr): boolean => {
    if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
    for (let bit = 0; bit < outer.prefix; bit += 8) {
      const n = Math.min(8, outer.prefix - bit);
      const mask = (0xff << (8 - n)) & 0xff;
      if (((outer.bytes[bit / 8] as number) & mask) !== ((inner.bytes[bit / 8] as number) & mask)) return false;
    }
    return true;
  };
  networks.forEach((a, i) => {
    // the widest other range that covers this one; the same range twice is reported at its second place
    const covers = networks
      .map((b, j) => ({ b, j }))
      .filter(({ b, j }) => j !== i && contains(b.cidr, a.cidr) && !(b.cidr.cidr === a.cidr.cidr && j > i))
      .sort((x, y) => x.b.cidr.prefix - y.b.cidr.prefix)[0];
    if (!covers) return;
    const b = covers.b;
    out.push({
      level: 'warning',
      where: a.where,
      message: b.cidr.cidr === a.cidr.cidr ? `${a.cidr.cidr} is listed twice (also in ${b.where})` : `${a.cidr.cidr} is already covered by ${b.cidr.cidr} (${b.where}): overlapping relay networks`,
    });
  });
  return out;
}

/** Check the instance; the findings in file order. */
export function checkInstance(dir: string): { findings: Finding[]; files: string[] } {
  const inst = path.resolve(dir);
  if (!fs.existsSync(path.join(inst, 'config'))) throw new CliError(`${inst} is not a Haraka instance (no config/ directory); use --config DIR`);
  const config = loader(inst);
  const findings: Finding[] = [];
  const files: string[] = [];
  const add = (f: Finding) => findings.push(f);
  const onError = (err: ConfigError) => add(splitWhere(err));
  const ini = (file: string): Ini | null => {
    files.push(file);
    for (const p of configFilePaths(config, file) ?? []) {
      if (fs.existsSync(p)) for (const e of lintIni(file, fs.readFileSync(p, 'utf8'))) onError(e);
    }
    try {
      return quietly(() => config.get(file, 'ini') as Ini);
    } catch (err) {
      add({ level: 'error', where: file, message: `cannot be read: ${errorMessage(err)}` });
      return null;
    }
  };
  const parse = <S extends Schema>(file: string, schema: S) => {
    const raw = ini(file);
    return parseConfig(file, schema, raw, (m) => add({ level: 'warning', where: m.replace(/:.*$/, ''), message: m.replace(/^[^:]*: /, '') }), onError);
  };
  const lines = (file: string, where: string): readonly string[] => {
    if (!file) return [];
    files.push(file);
    try {
      return quietly(() => (config.get(file, 'data') as string[] | null) ?? []);
    } catch (err) {
      add({ level: 'error', where, message: `${file}: ${errorMessage(err)}` });
      return [];
    }
  };
  const badLine = (file: string) => (n: number, message: string) => add({ level: 'error', where: `${file} line ${n}`, message: `${message} (Haraka skips this line)` });

  // config/plugins: which shield plugins run, and which stock plugins they replace
  const pluginsText = fs.existsSync(path.join(inst, 'config', 'plugins')) ? fs.readFileSync(path.join(inst, 'config', 'plugins'), 'utf8') : null;
  const enabled = enabledPlugins(pluginsText);
  const shipped = shippedPlugins();
  for (const name of enabled.filter((n) => n.startsWith('shield.') && !shipped.includes(n))) {
    add({ level: 'error', where: 'config/plugins', message: `${name} is not a shield plugin (have: ${shipped.join(', ')}): Haraka will not start` });
  }
  const shieldEnabled = enabled.filter((n) => shipped.includes(n));
  if (!shieldEnabled.length) add({ level: 'warning', where: 'config/plugins', message: 'no shield plugin is enabled (haraka-shield install --enable shield.relay,...)' });
  for (const line of stockConflicts(inst)) add({ level: 'warning', where: 'config/plugins', message: line.replace(/^config\/plugins: /, '') });
  // the stock setup's domains, networks and lists that the shield files do not carry yet
  try {
    const plan = quietly(() => planStockImport(instanceReader(inst)));
    if (plan.changes.length) {
      add({
        level: 'warning',
        where: plan.sources.map((s) => `config/${s}`).join(', ') || 'stock config',
        message: `Haraka's stock config has entries the shield files do not carry yet (${plan.changes.map((c) => c.file).join(', ')}): run haraka-shield import stock to see them, --write to carry them over`,
      });
    }
  } catch (err) {
    // a broken shield file is reported below, as itself
    if (!(err instanceof ConfigError) && !/^shield[\w.-]*\.ini /.test(errorMessage(err))) add({ level: 'warning', where: 'stock config', message: `could not be read: ${errorMessage(err)}` });
  }
  const relayAt = enabled.indexOf('shield.relay');
  const firstRcptStock = enabled.findIndex((n) => /^(rcpt_to\.|queue\/|qmail-deliverable|ldap|relay$)/.test(n));
  if (relayAt > -1 && firstRcptStock > -1 && firstRcptStock < relayAt) {
    add({ level: 'warning', where: 'config/plugins', message: `${enabled[firstRcptStock]} comes before shield.relay: put shield.relay first among recipient plugins, so that it refuses relay attempts before another plugin can accept` });
  }
  const uses = (name: string) => shieldEnabled.includes(name) || fs.existsSync(path.join(inst, 'config', `${name}.ini`));

  // the suite
  const suite = parse('shield.ini', SUITE_SCHEMA);
  for (const name of shieldEnabled) {
    const t = harakaTimeout(config, name);
    if (t > 0 && suite.hooks.budget >= t) {
      add({ level: 'warning', where: 'shield.ini [hooks] budget', message: `${suite.hooks.budget}s is not below Haraka's timeout of ${name} (${t}s): Haraka would end a slow hook first, with its own reply` });
    }
  }

  if (uses('shield.relay')) {
    const relay = parse('shield.relay.ini', RELAY_SCHEMA);
    const nets: Array<{ cidr: Cidr; where: string }> = relay.main.networks.map((n) => ({ cidr: parseCidr(n), where: 'shield.relay.ini [main] networks' }));
    const netFile = relay.main.networks_file;
    parseLines(lines(netFile, 'shield.relay.ini [main] networks_file'), (t, n) => nets.push({ cidr: parseCidr(cidrItem(t)), where: `${netFile} line ${n}` }), badLine(netFile));
    findings.push(...relayNetworkFindings(nets));
    const domFile = relay.main.domains_file;
    const domains = [...relay.main.domains.map(domainItem), ...parseLines(lines(domFile, 'shield.relay.ini [main] domains_file'), domainItem, badLine(domFile))];
    if (!domains.length && relay.main.accept_local) add({ level: 'warning', where: 'shield.relay.ini [main] domains', message: 'no local domains: every recipient from outside the relay networks is refused' });
  }
  if (uses('shield.blocklist')) {
    const bl = parse('shield.blocklist.ini', BLOCKLIST_SCHEMA);
    for (const [list, file] of [
      ['block', bl.main.block_file],
      ['allow', bl.main.allow_file],
    ] as const) {
      if (!file) continue;
      const text = lines(file, `shield.blocklist.ini [main] ${list}_file`);
      for (const e of listFileEntries(file, list, text, badLine(file))) {
        const n = e.source.replace(/^.*:/, '');
        const looks = reasonLooksLikeEntry(e.reason);
        if (looks) add({ level: 'warning', where: `${file} line ${n}`, message: `the reason "${e.reason}" starts with what looks like another entry; if it is one, put it on a line of its own` });
        if (list === 'allow') {
          const broad = e.kind === 'ip' ? Number(e.value.split('/')[1]) < (e.value.includes(':') ? 32 : 16) : !e.value.includes('.') && !e.value.includes('@');
          if (broad) add({ level: 'warning', where: `${file} line ${n}`, message: `allow ${e.kind} ${e.value} is very broad: every client or sender it covers skips the reputation checks` });
        }
      }
    }
  }
  if (uses('shield.limit')) {
    const limit = parse('shield.limit.ini', LIMIT_SCHEMA);
    const file = limit.main.overrides_file;
    parseLines(lines(file, 'shield.limit.ini [main] overrides_file'), parseOverrideLine, badLine(file));
    if (limit.main.tarpit >= suite.hooks.budget) add({ level: 'warning', where: 'shield.limit.ini [main] tarpit', message: `${limit.main.tarpit}s is not below shield.ini [hooks] budget (${suite.hooks.budget}s): a tarpitted reply would be cut off` });
  }
  if (uses('shield.rdns')) parse('shield.rdns.ini', RDNS_SCHEMA);
  if (uses('shield.dnsbl')) {
    const raw = ini(DNSBL_FILE);
    const cfg = parseDnsblConfig(raw as Record<string, Record<string, unknown>> | null, (m) => add({ level: 'warning', where: m.replace(/:.*$/, ''), message: m.replace(/^[^:]*: /, '') }), onError);
    if (cfg.zones.length && !suite.dns.nameservers.length) {
      const spamhaus = cfg.zones.filter((z) => /(^|\.)spamhaus\.(org|net)$/.test(z.zone) && !z.key);
      add({
        level: 'warning',
        where: 'shield.ini [dns] nameservers',
        message: spamhaus.length
          ? `empty: the zones ${spamhaus.map((z) => z.name).join(', ')} (Spamhaus) are asked through the system resolver; Spamhaus refuses queries that come through public resolvers (it answers 127.255.255.254, a zone error), so they never list anyone. Run a local caching resolver and name it here`
          : 'empty: the DNS lists are asked through the system resolver (/etc/resolv.conf); several lists refuse queries from public resolvers. Use a local caching resolver',
      });
    }
  }
  return { findings, files: [...new Set(files)] };
}

/** Run `check`; returns the exit code. */
export function checkCommand(argv: readonly string[], io: { out(line: string): void }): number {
  let dir: string | undefined;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--json') json = true;
    else if (a === '--config') {
      dir = argv[++i];
      if (!dir) throw new CliError('--config: give the instance directory');
    } else if (a.startsWith('--config=')) dir = a.slice('--config='.length);
    else if (a === '--help' || a === '-h') {
      io.out(CHECK_USAGE);
      return 0;
    } else throw new CliError(`check: unknown argument ${a} (${CHECK_USAGE.split('\n')[0]})`);
  }
  const { findings, files } = checkInstance(dir ?? process.env.HARAKA ?? process.cwd());
  const errors = findings.filter((f) => f.level === 'error').length;
  const warnings = findings.length - errors;
  if (json) {
    io.out(JSON.stringify({ ok: errors === 0, errors, warnings, files, findings }, null, 2));
  } else {
    for (const f of findings) io.out(`${f.level === 'error' ? 'error  ' : 'warning'} ${f.where}: ${f.message}`);
    io.out(errors || warnings ? `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'} in ${files.length} files` : `ok: ${files.length} files checked, no problems`);
  }
  return errors ? 1 : 0;
}
