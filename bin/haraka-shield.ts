#!/usr/bin/env node
/**
 * haraka-shield: the suite's command-line tool.
 *
 *   haraka-shield install [--enable NAME[,NAME]] [DIR]
 *       link the shield plugins into the Haraka instance DIR (default: the current directory) and
 *       add the default shield*.ini files it does not have yet (existing files are never touched).
 *   haraka-shield config [PLUGIN] [--effective] [--json] [--config DIR]
 *       print every config key with its documentation and default (and this instance's value).
 *   haraka-shield import stock [--write] [DIR]
 *       carry the stock relay/access config (host_list, relay_acl_allow, access lists) over.
 *   haraka-shield block|allow add|remove|list|test ...
 *       manage the shared block and allow entries (see LISTS_USAGE in list-commands.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Schema } from '../plugins/shield/core/config';
import { errorMessage } from '../plugins/shield/core/errors';
import { SUITE_SCHEMA } from '../plugins/shield/core/suite';
import { BLOCKLIST_SCHEMA } from '../plugins/shield/checks/blocklist-config';
import { DNSBL_SCHEMA } from '../plugins/shield/checks/dnsbl-config';
import { LIMIT_SCHEMA } from '../plugins/shield/checks/limit-config';
import { RDNS_SCHEMA } from '../plugins/shield/checks/rdns-config';
import { RELAY_SCHEMA } from '../plugins/shield/checks/relay-config';
import { CliError, oneLine, parseCliArgs } from './args';
import { checkCommand } from './check';
import { CONFIG_USAGE, configCommand } from './config-command';
import { IMPORT_USAGE, importCommand, planStockImport, instanceReader, stockConflicts } from './import-stock';
import { LISTS_USAGE, listsCommand } from './list-commands';

const PKG_ROOT = path.resolve(__dirname, '..');

const COMMANDS = ['install', 'check', 'config', 'import', 'block', 'allow', 'explain'];

function usage(code: number): never {
  const text = `usage:
  haraka-shield install [--enable NAME[,NAME...]] [DIR]   link the plugins into a Haraka instance (default: .)
  haraka-shield check [--config DIR] [--json]            every error and warning in this instance's shield config
  haraka-shield config [PLUGIN] [--effective] [--json]   config keys, defaults and docs (and this instance's values)
  haraka-shield import stock [--write] [DIR]             carry Haraka's stock relay/access config over
  haraka-shield block|allow add|remove|list|test ...     shared block and allow entries (block --help)
  haraka-shield explain --ip IP [...]                    what a session would get, stage by stage (explain --help)
  haraka-shield --help

${CONFIG_USAGE}

${IMPORT_USAGE}

${LISTS_USAGE}`;
  (code === 0 ? console.log : console.error)(text);
  process.exit(code);
}

/** every error: one line on stderr, exit 1 */
function fail(msg: string): never {
  console.error(`haraka-shield: ${oneLine(msg)}`);
  process.exit(1);
}

/** every shield.<name> plugin this package ships */
export function shippedPlugins(): string[] {
  return fs
    .readdirSync(path.join(PKG_ROOT, 'plugins'))
    .filter((f) => /^shield\.[a-z0-9_-]+\.js$/.test(f))
    .map((f) => f.replace(/\.js$/, ''))
    .sort();
}

/**
 * config/plugins with `enable` added: the shield plugins go on top, shield.relay first of them, so it
 * runs before any other recipient plugin of the same priority (a plugin added later goes right after
 * it); a shield.relay listed below another plugin moves up when it is enabled again. Returns null
 * when nothing changes.
 */
export function enablePlugins(current: string, enable: readonly string[]): { text: string; added: string[]; moved: string[] } | null {
  const lines = current === '' ? [] : current.replace(/\r?\n$/, '').split(/\r?\n/);
  const active = (l: string): string => l.replace(/#.*$/, '').trim();
  const relayFirst = (a: string, b: string): number => Number(b === 'shield.relay') - Number(a === 'shield.relay');
  const want = [...new Set(enable)].sort(relayFirst);
  const added = want.filter((n) => !lines.some((l) => active(l) === n));
  const moved: string[] = [];
  let relayAt = lines.findIndex((l) => active(l) === 'shield.relay');
  if (relayAt !== -1) {
    const firstOther = lines.findIndex((l) => active(l) !== '' && !active(l).startsWith('shield.'));
    if (firstOther !== -1 && firstOther < relayAt && want.includes('shield.relay')) {
      lines.splice(relayAt, 1);
      moved.push('shield.relay');
      relayAt = -1;
    }
  }
  const top = [...moved, ...added].sort(relayFirst);
  if (!top.length) return null;
  if (relayAt !== -1 && !top.includes('shield.relay')) {
    // shield.relay is on top already: the new ones go right after it
    lines.splice(relayAt + 1, 0, ...top);
    return { text: `${lines.join('\n')}\n`, added, moved };
  }
  const rest = lines.length ? `\n${lines.join('\n')}\n` : '';
  return { text: `# haraka-shield\n${top.join('\n')}\n${rest}`, added, moved };
}

export function install(dir: string, enable: string[]): string[] {
  const done: string[] = [];
  const inst = path.resolve(dir);
  if (!fs.existsSync(path.join(inst, 'config')) || !fs.existsSync(path.join(inst, 'config', 'smtp.ini'))) {
    throw new CliError(`${inst} is not a Haraka instance (no config/smtp.ini); create one with: haraka -i ${inst}`);
  }
  const plugins = shippedPlugins();
  if (plugins.length === 0) throw new CliError(`no built plugins in ${PKG_ROOT}/plugins (run npm run build)`);
  for (const name of enable) if (!plugins.includes(name)) throw new CliError(`--enable ${name}: not a shield plugin (have: ${plugins.join(', ')})`);

  const pdir = path.join(inst, 'plugins');
  fs.mkdirSync(pdir, { recursive: true });
  for (const name of plugins) {
    const target = path.join(PKG_ROOT, 'plugins', `${name}.js`);
    let rel = path.relative(pdir, target);
    if (!rel.startsWith('.') && !path.isAbsolute(rel)) rel = `./${rel}`;
    const stub = `'use strict';
// Installed by haraka-shield: this file links Haraka to the plugin in the haraka-shield package.
// Re-run "haraka-shield install" after moving the package; do not edit.
const impl = require(${JSON.stringify(rel)});
for (const key of Object.keys(impl)) exports[key] = impl[key];
`;
    fs.writeFileSync(path.join(pdir, `${name}.js`), stub);
    done.push(`plugins/${name}.js -> ${rel}`);
  }

  const cdir = path.join(inst, 'config');
  for (const f of fs.readdirSync(path.join(PKG_ROOT, 'config'))) {
    if (!/^shield/.test(f)) continue;
    const dest = path.join(cdir, f);
    if (fs.existsSync(dest)) {
      done.push(`config/${f} kept (exists)`);
      continue;
    }
    fs.copyFileSync(path.join(PKG_ROOT, 'config', f), dest);
    done.push(`config/${f} added`);
  }

  if (enable.length) {
    const listFile = path.join(cdir, 'plugins');
    const current = fs.existsSync(listFile) ? fs.readFileSync(listFile, 'utf8') : '';
    const next = enablePlugins(current, enable);
    if (next) {
      fs.writeFileSync(listFile, next.text);
      if (next.added.length) done.push(`config/plugins: enabled ${next.added.join(', ')}`);
      if (next.moved.length) done.push(`config/plugins: moved shield.relay to the top (it must run before the other recipient plugins)`);
    }
  }
  // the stock setup, measured against the shield files as they are now
  let stock: ReturnType<typeof planStockImport> | null = null;
  try {
    stock = planStockImport(instanceReader(inst));
  } catch (err) {
    done.push(`hint: haraka-shield import stock cannot read this instance's config: ${oneLine(errorMessage(err))}`);
  }
  if (stock && (stock.changes.length || stock.notes.length)) {
    const what = stock.changes.length ? 'to carry it over (shield.relay refuses mail for domains it does not know)' : 'to see what it cannot carry over';
    done.push(`hint: this instance has stock relay/access config (${stock.sources.map((s) => `config/${s}`).join(', ')}): run haraka-shield import stock ${what}`);
  }
  for (const line of stockConflicts(inst)) done.push(`hint: ${line}`);
  return done;
}

/**
 * Every config file and its schema, in the order `config` prints them: the suite's, then the
 * plugins' by name. The schemas come from the checks' *-config modules, never from the plugin
 * adapters (plugins/shield.<name>.js): loading an adapter pulls in the plugin and its hooks.
 */
export const CONFIG_SCHEMAS: ReadonlyArray<readonly [file: string, schema: Schema]> = [
  ['shield.ini', SUITE_SCHEMA as never],
  ['shield.blocklist.ini', BLOCKLIST_SCHEMA],
  ['shield.dnsbl.ini', DNSBL_SCHEMA],
  ['shield.limit.ini', LIMIT_SCHEMA],
  ['shield.rdns.ini', RDNS_SCHEMA],
  ['shield.relay.ini', RELAY_SCHEMA],
];

function main(argv: string[]): void {
  const [cmd, ...rest] = argv;
  if (!cmd) usage(2);
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') usage(0);
  const print = (text: string) => console.log(text);
  const done = (code: number): never => process.exit(code);
  const onError = (err: unknown): never => fail(err instanceof CliError ? err.message : `unexpected error: ${errorMessage(err)}`);
  try {
    switch (cmd) {
      case 'block':
      case 'allow': {
        const io = { out: print, err: (l: string) => console.error(`haraka-shield: ${l}`) };
        listsCommand(cmd, rest, io).then(done, onError);
        return;
      }
      case 'install': {
        const args = parseCliArgs(rest, { enable: 'list' });
        if (args.positionals.length > 1) throw new CliError(`install: give one instance directory (got ${args.positionals.join(' ')})`);
        for (const line of install(args.positionals[0] ?? process.cwd(), [...(args.lists.get('enable') ?? [])])) print(line);
        return;
      }
      case 'explain': {
        // loaded only for this command: it runs the plugins' engines in-process
        const { explainCommand } = require('./explain') as typeof import('./explain');
        const io = { out: print, err: (l: string) => console.error(`haraka-shield: ${oneLine(l)}`) };
        explainCommand(rest, io).then(done, onError);
        return;
      }
      case 'check':
        done(checkCommand(rest, { out: print }));
        return;
      case 'config':
        print(configCommand(rest, CONFIG_SCHEMAS));
        return;
      case 'import':
        done(importCommand(rest, print));
        return;
      default:
        throw new CliError(`unknown command ${cmd} (commands: ${COMMANDS.join(', ')}; haraka-shield --help)`);
    }
  } catch (err) {
    onError(err);
  }
}

if (require.main === module) main(process.argv.slice(2));
