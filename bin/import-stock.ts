/**
 * Migration from Haraka's stock relay and access plugins: `haraka-shield import stock [--write] [DIR]`.
 *
 * What converts (into the files the instance's shield ini files name):
 *   config/host_list                       -> shield.relay domains_file (shield.relay.domains)
 *   relay_dest_domains.ini [domains] X = {"action": "accept"|"continue"}
 *                                          -> shield.relay domains_file (relay plugin, dest_domains = true)
 *   config/relay_acl_allow                 -> shield.relay networks_file (shield.relay.networks)
 *                                             (relay plugin enabled, [relay] acl not false)
 *   access plugin (enabled; [check] conn/mail/rcpt/any):
 *     connect.rdns_access.whitelist|blacklist  -> allow|block  ip: / domain:
 *     mail_from.access.whitelist|blacklist     -> allow|block  sender:
 *     rcpt_to.access.whitelist|blacklist       -> allow|block  rcpt:
 *     access.domains X / !user@x               -> block domain:X + sender:X / allow sender:user@x
 * What does not (said in a note, with the lines): host_list_regex and every *_regex file (patterns,
 * not entries), relay.ini all / force_routing, access.domains "!host" exceptions, lines that are not
 * what the file expects. Networks and allow entries of a stock plugin that is not enabled are not
 * imported (they grant nothing today); domains always are (they are what this server accepts mail for).
 *
 * `planStockImport` computes the changes from file contents (pure, no I/O); the command prints a
 * unified diff per shield file and writes with --write. Changes only add lines, never drop what a
 * shield file has, and skip what it has already, so a second run proposes nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseConfig, type RawValue, type Schema, type SchemaOf } from '../plugins/shield/core/config';
import { errorMessage } from '../plugins/shield/core/errors';
import { listFileEntries, parseEntryText, type EntryKind, type ListName } from '../plugins/shield/core/list-entries';
import { cidrItem, normalizeHostname, parseIp } from '../plugins/shield/core/net';
import { BLOCKLIST_SCHEMA } from '../plugins/shield/checks/blocklist-config';
import { ACCEPTED_DOMAIN } from '../plugins/shield/checks/relay';
import { RELAY_SCHEMA } from '../plugins/shield/checks/relay-config';
import { CliError, parseCliArgs } from './args';

export const IMPORT_USAGE = `usage: haraka-shield import stock [--write] [DIR]
  carry the stock relay/access config of the Haraka instance DIR (default: $HARAKA, else .) over
  into the shield files: host_list and relay_dest_domains.ini domains, relay_acl_allow networks,
  the access plugin's lists. Prints a diff of each shield file it would change; --write writes them.`;

type Ini = Record<string, Record<string, RawValue> | undefined>;

/** the text of config/<name>, or null when there is no such file */
export type ReadConfig = (name: string) => string | null;

export interface FileChange {
  /** name in config/ */
  readonly file: string;
  /** current text, or null for a new file */
  readonly before: string | null;
  readonly after: string;
  /** the lines added (comments included) */
  readonly added: readonly string[];
}

export interface StockImport {
  readonly changes: readonly FileChange[];
  /** what could not be converted or was left out, one line each */
  readonly notes: readonly string[];
  /** the stock files that hold something (for install's hint) */
  readonly sources: readonly string[];
}

const iniReader = require('haraka-config/lib/readers/ini') as { parseIni(name: string, options: object, data: string): Ini };

function parseIni(name: string, text: string | null): Ini {
  return text === null ? {} : iniReader.parseIni(name, {}, text);
}

/** Haraka's truth words, as its ini reader takes them for declared booleans */
function truthy(v: RawValue, def: boolean): boolean {
  if (v === undefined || v === '') return def;
  if (typeof v === 'boolean') return v;
  return /^(?:true|yes|ok|enabled|on|1)$/i.test(String(v).trim());
}

/** lines of a Haraka list file: [lineNo, text] without blank and comment lines */
function listLines(text: string | null): Array<[number, string]> {
  if (text === null) return [];
  const out: Array<[number, string]> = [];
  text.split(/\r\n|\r|\n/).forEach((line, i) => {
    if (/^\s*$/.test(line) || /^\s*[;#]/.test(line)) return;
    out.push([i + 1, line.trim()]);
  });
  return out;
}

/** the plugins config/plugins enables, as names without a haraka-plugin- prefix */
export function enabledPlugins(text: string | null): string[] {
  return listLines(text)
    .map(([, l]) => (l.split(/\s+/)[0] as string).replace(/^haraka-plugin-/, ''))
    .filter(Boolean);
}

/** the stock plugins the shield suite replaces, and with what */
const REPLACED: ReadonlyArray<readonly [stock: readonly string[], shield: string, what: string]> = [
  [['relay'], 'shield.relay', 'relay networks (run haraka-shield import stock first)'],
  [['rcpt_to.in_host_list'], 'shield.relay', 'local domains (run haraka-shield import stock first; keep it only with shield.relay accept_local = false)'],
  [['access', 'connect.rdns_access', 'mail_from.access', 'rcpt_to.access'], 'shield.blocklist', 'block and allow lists (run haraka-shield import stock first)'],
  [['dnsbl', 'dns-list', 'dnswl'], 'shield.dnsbl', 'DNS lists: config/shield.dnsbl.ini'],
  [['fcrdns', 'lookup_rdns.strict', 'connect.fcrdns'], 'shield.rdns', 'rDNS checks: config/shield.rdns.ini'],
  [['helo.checks'], 'shield.rdns', 'HELO checks: config/shield.rdns.ini'],
  [['limit', 'rcpt_to.max_count', 'max_unrecognized_commands'], 'shield.limit', 'limits: config/shield.limit.ini'],
];

/** one line per stock plugin enabled in `plugins` that an enabled shield plugin replaces */
export function stockConflictLines(plugins: readonly string[]): string[] {
  const out: string[] = [];
  for (const name of plugins) {
    const hit = REPLACED.find(([stock]) => stock.includes(name));
    if (!hit || !plugins.includes(hit[1])) continue;
    out.push(`config/plugins: ${name} is replaced by ${hit[1]}, ${hit[2]}: remove ${name}`);
  }
  return out;
}

/**
 * The stock plugins enabled in DIR/config/plugins that conflict with an enabled shield plugin, one
 * line each naming the shield plugin that replaces it (for `haraka-shield check` and `install`).
 */
export function stockConflicts(instanceDir: string): string[] {
  const file = path.join(instanceDir, 'config', 'plugins');
  return stockConflictLines(enabledPlugins(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null));
}

/** a shield list file: its current text and the lines to append */
class Target {
  readonly added: string[] = [];
  private readonly seen = new Set<string>();
  private header: string | null = null;

  constructor(
    readonly file: string,
    readonly before: string | null,
    have: Iterable<string>,
  ) {
    for (const h of have) this.seen.add(h);
  }

  /** the key is set elsewhere (the ini's own list): nothing to add for it */
  know(key: string): void {
    this.seen.add(key);
  }

  /** add `line` (identified by `key`) unless the file has it; `from` heads the imported block */
  add(key: string, line: string, from: string): boolean {
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    if (this.header !== from) {
      this.header = from;
      this.added.push(`# imported from ${from} by haraka-shield import stock`);
    }
    this.added.push(line);
    return true;
  }

  change(): FileChange | null {
    if (!this.added.length) return null;
    const base = this.before ?? '';
    const sep = base === '' || base.endsWith('\n') ? '' : '\n';
    return { file: this.file, before: this.before, after: `${base}${sep}${this.added.join('\n')}\n`, added: [...this.added] };
  }
}

function shieldConfig<S extends Schema>(file: string, schema: S, read: ReadConfig): SchemaOf<S> {
  try {
    return parseConfig(file, schema, parseIni(file, read(file)) as never);
  } catch (err) {
    throw new CliError(errorMessage(err));
  }
}

function domainKey(text: string): string | null {
  return normalizeHostname(text.replace(/#.*$/, ''), ACCEPTED_DOMAIN);
}

/** Compute what `import stock` would add to the shield files, from the instance's config files. */
export function planStockImport(read: ReadConfig): StockImport {
  const notes: string[] = [];
  const sources = new Set<string>();
  const plugins = enabledPlugins(read('plugins'));
  const relayCfg = shieldConfig('shield.relay.ini', RELAY_SCHEMA, read);
  const listCfg = shieldConfig('shield.blocklist.ini', BLOCKLIST_SCHEMA, read);

  const targetOf = (file: string, have: (text: string) => Iterable<string>): Target => {
    const text = read(file);
    return new Target(file, text, text === null ? [] : have(text));
  };
  const lineKeys = (item: (s: string) => string | null) => (text: string) =>
    listLines(text)
      .map(([, l]) => item(l.replace(/#.*$/, '').trim()))
      .filter((k): k is string => k !== null);

  const domains = relayCfg.main.domains_file
    ? targetOf(relayCfg.main.domains_file, lineKeys(domainKey))
    : new Target('shield.relay.ini [main] domains', null, []);
  for (const d of relayCfg.main.domains) {
    const k = domainKey(d);
    if (k) domains.know(k);
  }
  const networks = relayCfg.main.networks_file
    ? targetOf(relayCfg.main.networks_file, lineKeys((l) => {
        try {
          return cidrItem(l);
        } catch {
          return null;
        }
      }))
    : new Target('shield.relay.ini [main] networks', null, []);
  for (const n of relayCfg.main.networks) networks.know(n);
  const entryKeys = (list: ListName) => (text: string) => listFileEntries('', list, text.split(/\r\n|\r|\n/), () => undefined).map((e) => `${e.kind}:${e.value}`);
  const lists: Record<ListName, Target | null> = {
    block: listCfg.main.block_file ? targetOf(listCfg.main.block_file, entryKeys('block')) : null,
    allow: listCfg.main.allow_file ? targetOf(listCfg.main.allow_file, entryKeys('allow')) : null,
  };

  // --- local domains: host_list, host_list_regex, relay_dest_domains.ini
  for (const [n, l] of listLines(read('host_list'))) {
    sources.add('host_list');
    const d = domainKey(l);
    if (!d) notes.push(`config/host_list line ${n}: "${l}" is not a domain name; not imported`);
    else domains.add(d, d, 'config/host_list');
  }
  const regexes = listLines(read('host_list_regex'));
  if (regexes.length) {
    sources.add('host_list_regex');
    notes.push(
      `config/host_list_regex: ${regexes.length} pattern(s) not imported (${regexes.map(([n, l]) => `line ${n}: ${l}`).join('; ')}): shield.relay takes exact domains; add the domains they stand for to config/${domains.file} (accept_subdomains = true in shield.relay.ini covers every subdomain of a local domain)`,
    );
  }

  const relayOn = plugins.includes('relay');
  const relayIni = parseIni('relay.ini', read('relay.ini'));
  const relaySect = relayIni.relay ?? {};
  if (relayOn && truthy(relaySect.all, false)) notes.push('relay.ini [relay] all = true accepts every recipient (an open relay, for spamtraps): shield.relay has no such setting and refuses relaying');
  if (relayOn && truthy(relaySect.force_routing, false)) notes.push('relay.ini [relay] force_routing: routing (nexthop) has no shield equivalent; keep the relay plugin for it with acl = false and dest_domains = false');
  const destText = read('relay_dest_domains.ini');
  if (destText !== null) {
    const dest = parseIni('relay_dest_domains.ini', destText).domains ?? {};
    const names = Object.keys(dest);
    if (names.length) sources.add('relay_dest_domains.ini');
    if (names.length && !(relayOn && truthy(relaySect.dest_domains, false))) {
      notes.push(`relay_dest_domains.ini: ${names.length} domain(s) not imported: the relay plugin ${relayOn ? 'has [relay] dest_domains off' : 'is not enabled in config/plugins'}, so they are not accepted today`);
    } else {
      for (const name of names) {
        let action = '';
        try {
          action = String((JSON.parse(String(dest[name])) as { action?: unknown }).action ?? '');
        } catch {
          notes.push(`relay_dest_domains.ini [domains] ${name}: the value is not JSON; not imported`);
          continue;
        }
        const d = domainKey(name);
        if (!d) notes.push(`relay_dest_domains.ini [domains] ${name}: not a domain name; not imported`);
        else if (action === 'accept' || action === 'continue') domains.add(d, d, 'config/relay_dest_domains.ini');
        else if (action !== 'deny') notes.push(`relay_dest_domains.ini [domains] ${name}: action "${action}" is not accept, continue or deny; not imported`);
      }
    }
  }

  // --- relay networks: relay_acl_allow
  const acl = listLines(read('relay_acl_allow'))
    .map(([n, l]) => [n, l.replace(/#.*$/, '').trim()] as [number, string])
    .filter(([, l]) => l);
  if (acl.length) {
    sources.add('relay_acl_allow');
    if (!relayOn || !truthy(relaySect.acl, true)) {
      notes.push(`config/relay_acl_allow: ${acl.length} network(s) not imported: the relay plugin ${relayOn ? 'has [relay] acl = false' : 'is not enabled in config/plugins'}, so they cannot relay today`);
    } else {
      for (const [n, l] of acl) {
        const [ip, len] = l.split('/');
        const parsed = parseIp(ip as string);
        if (!parsed || (len !== undefined && !/^\d{1,3}$/.test(len))) {
          notes.push(`config/relay_acl_allow line ${n}: "${l}" is not an IP address or CIDR range; not imported`);
          continue;
        }
        const host = parsed.family === 4 ? 32 : 128;
        // the relay plugin reads a missing or zero length as one host (parseInt(len) || 32): a "/0"
        // never opened it to everyone, and the import must not either
        let prefix = len === undefined ? host : Number(len);
        if (prefix === 0) {
          prefix = host;
          notes.push(`config/relay_acl_allow line ${n}: "${l}" imported as the one host ${parsed.text}, as the relay plugin read it (a /0 would make an open relay)`);
        }
        let cidr: string;
        try {
          cidr = cidrItem(`${parsed.text}/${prefix}`);
        } catch (err) {
          // host bits set: the stock plugin matched the whole range; so does shield, written canonically
          const m = /did you mean (\S+)\?/.exec(errorMessage(err));
          if (!m) {
            notes.push(`config/relay_acl_allow line ${n}: ${errorMessage(err)}; not imported`);
            continue;
          }
          cidr = m[1] as string;
          notes.push(`config/relay_acl_allow line ${n}: "${l}" imported as ${cidr}, the range the relay plugin matched`);
        }
        networks.add(cidr, cidr, 'config/relay_acl_allow');
      }
    }
  }

  // --- the access plugin's lists
  const accessOn = plugins.includes('access');
  const accessIni = parseIni('access.ini', read('access.ini'));
  const check = (phase: string): boolean => truthy((accessIni.check ?? {})[phase], true);
  const ACCESS: ReadonlyArray<readonly [file: string, phase: string, list: ListName, kinds: readonly EntryKind[]]> = [
    ['connect.rdns_access.whitelist', 'conn', 'allow', ['ip', 'domain']],
    ['connect.rdns_access.blacklist', 'conn', 'block', ['ip', 'domain']],
    ['mail_from.access.whitelist', 'mail', 'allow', ['sender']],
    ['mail_from.access.blacklist', 'mail', 'block', ['sender']],
    ['rcpt_to.access.whitelist', 'rcpt', 'allow', ['rcpt']],
    ['rcpt_to.access.blacklist', 'rcpt', 'block', ['rcpt']],
  ];
  const addEntry = (list: ListName, kind: EntryKind | undefined, text: string, from: string, where: string): void => {
    const target = lists[list];
    if (!target) {
      notes.push(`${where}: "${text}" not imported: shield.blocklist.ini has no ${list}_file`);
      return;
    }
    let e: { kind: EntryKind; value: string };
    try {
      e = parseEntryText(text, kind);
    } catch (err) {
      notes.push(`${where}: ${errorMessage(err)}; not imported`);
      return;
    }
    target.add(`${e.kind}:${e.value}`, `${e.kind}:${e.value} ${from.replace(/^config\//, 'stock ')}`, from);
  };
  const off = (file: string, what: string, count: number): void => {
    notes.push(`config/${file}: ${count} line(s) not imported: ${what}, so they are not enforced today`);
  };
  for (const [file, phase, list, kinds] of ACCESS) {
    const lines = listLines(read(file));
    const patterns = listLines(read(`${file}_regex`));
    if (patterns.length) {
      sources.add(`${file}_regex`);
      notes.push(`config/${file}_regex: ${patterns.length} pattern(s) not imported (${patterns.map(([n, l]) => `line ${n}: ${l}`).join('; ')}): shield.blocklist takes entries, not patterns; a domain entry covers its subdomains`);
    }
    if (!lines.length) continue;
    sources.add(file);
    if (!accessOn || !check(phase)) {
      off(file, accessOn ? `access.ini [check] ${phase} = false` : 'the access plugin is not enabled in config/plugins', lines.length);
      continue;
    }
    for (const [n, l] of lines) {
      const where = `config/${file} line ${n}`;
      if (kinds[0] === 'ip') {
        // the access plugin compares the client's IP and its rDNS name, exactly; the kind is guessed
        // (an IP or range is ip, a name is domain, an invalid IP-like token an error)
        if (l.includes('@')) notes.push(`${where}: "${l}" is an address; the connect lists match the client's IP or rDNS name; not imported`);
        else addEntry(list, undefined, l, `config/${file}`, where);
      } else if (!l.includes('@')) {
        notes.push(`${where}: "${l}" is not an address; the access plugin compares whole addresses, so it never matched; not imported (write ${kinds[0]}:${l} in config/${lists[list]?.file ?? `shield.blocklist.${list}`} for the whole domain)`);
      } else addEntry(list, kinds[0] as EntryKind, l, `config/${file}`, where);
    }
  }
  const anyLines = listLines(read('access.domains'));
  if (anyLines.length) {
    sources.add('access.domains');
    if (!accessOn || !check('any')) off('access.domains', accessOn ? 'access.ini [check] any = false' : 'the access plugin is not enabled in config/plugins', anyLines.length);
    else {
      for (const [n, l] of anyLines) {
        const where = `config/access.domains line ${n}`;
        if (l.startsWith('!')) {
          const v = l.slice(1);
          if (v.includes('@')) addEntry('allow', 'sender', v, 'config/access.domains', where);
          else {
            addEntry('allow', 'sender', v, 'config/access.domains', where);
            notes.push(`${where}: "${l}" also exempted the host ${v} as rDNS/HELO name; a shield allow entry domain:${v} would exempt that client from every reputation check: add it by hand if you mean that`);
          }
        } else if (l.includes('@')) {
          notes.push(`${where}: "${l}" is an address; access.domains blocks domains; not imported`);
        } else {
          addEntry('block', 'domain', l, 'config/access.domains', where);
          addEntry('block', 'sender', l, 'config/access.domains', where);
        }
      }
    }
  }

  if (!relayCfg.main.domains_file && domains.added.length) notes.push(`shield.relay.ini has no domains_file: add to [main] domains: ${domains.added.filter((l) => !l.startsWith('#')).join(', ')}`);
  if (!relayCfg.main.networks_file && networks.added.length) notes.push(`shield.relay.ini has no networks_file: add to [main] networks: ${networks.added.filter((l) => !l.startsWith('#')).join(', ')}`);
  const changes = [relayCfg.main.domains_file ? domains : null, relayCfg.main.networks_file ? networks : null, lists.block, lists.allow]
    .map((t) => t?.change() ?? null)
    .filter((c): c is FileChange => c !== null);
  return { changes, notes, sources: [...sources] };
}

/** A unified diff of one change (it only appends lines): headers, one hunk with 3 lines of context. */
export function unifiedDiff(change: FileChange): string {
  const name = `config/${change.file}`;
  const beforeLines = change.before === null || change.before === '' ? [] : change.before.replace(/\n$/, '').split('\n');
  const context = beforeLines.slice(-3);
  const start = beforeLines.length - context.length + 1;
  const out = [`--- ${change.before === null ? '/dev/null' : name}`, `+++ ${name}`];
  const oldRange = context.length ? `${start},${context.length}` : `${beforeLines.length},0`;
  out.push(`@@ -${oldRange} +${context.length ? start : beforeLines.length + 1},${context.length + change.added.length} @@`);
  for (const l of context) out.push(` ${l}`);
  for (const l of change.added) out.push(`+${l}`);
  return out.join('\n');
}

/** the files of DIR/config, read lazily (a directory or an unreadable file is an error, not "missing") */
export function instanceReader(instanceDir: string): ReadConfig {
  const dir = path.join(instanceDir, 'config');
  return (name) => {
    const p = path.join(dir, name);
    if (!fs.existsSync(p)) return null;
    try {
      return fs.readFileSync(p, 'utf8');
    } catch (err) {
      throw new CliError(`config/${name}: ${errorMessage(err)}`);
    }
  };
}

/** Run `import stock ...`; returns the exit code. */
export function importCommand(argv: readonly string[], out: (line: string) => void): number {
  const [what, ...rest] = argv;
  if (what === '--help' || what === '-h') {
    out(IMPORT_USAGE);
    return 0;
  }
  if (what !== 'stock') throw new CliError(what ? `import ${what}: only "import stock" exists (Haraka's stock relay/access config)` : 'import: say what to import: haraka-shield import stock [--write] [DIR]');
  const args = parseCliArgs(rest, { write: 'boolean', config: 'string', help: 'boolean' });
  if (args.flags.has('help')) {
    out(IMPORT_USAGE);
    return 0;
  }
  if (args.positionals.length > 1 || (args.positionals.length && args.strings.has('config'))) throw new CliError('import stock: give one instance directory');
  const inst = path.resolve(args.positionals[0] ?? args.strings.get('config') ?? process.env.HARAKA ?? process.cwd());
  if (!fs.existsSync(path.join(inst, 'config'))) throw new CliError(`${inst} is not a Haraka instance (no config/ directory)`);
  const plan = planStockImport(instanceReader(inst));
  // plan everything before writing anything
  for (const c of plan.changes) out(unifiedDiff(c));
  for (const n of plan.notes) out(`note: ${n}`);
  if (!plan.changes.length) {
    out(plan.sources.length ? 'nothing to import: the shield files already have everything the stock config converts' : 'nothing to import: no stock relay/access config in this instance');
  } else if (args.flags.has('write')) {
    for (const c of plan.changes) {
      const p = path.join(inst, 'config', c.file);
      try {
        // append only: a change made to the file since it was read is kept
        if ((fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : null) !== c.before) throw new Error('changed while this command ran; run it again');
        fs.writeFileSync(p, c.after);
      } catch (err) {
        throw new CliError(`config/${c.file}: ${errorMessage(err)}`);
      }
      out(`wrote config/${c.file} (${c.added.filter((l) => !l.startsWith('#')).length} added)`);
    }
  } else out('nothing written: run again with --write to apply');
  for (const line of stockConflicts(inst)) out(line);
  return 0;
}
