#!/usr/bin/env node
/**
 * haraka-shield: the suite's command-line tool.
 *
 *   haraka-shield install [--enable NAME[,NAME]] [DIR]
 *       link the shield plugins into the Haraka instance DIR (default: the current directory) and
 *       add the default shield*.ini files it does not have yet (existing files are never touched).
 *   haraka-shield config [PLUGIN]
 *       print every config key with its type, default and documentation.
 *   haraka-shield block|allow add|remove|list|test ...
 *       manage the shared block and allow entries (see LISTS_USAGE in list-commands.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describeSchema } from '../plugins/shield/core/config';
import { SUITE_SCHEMA } from '../plugins/shield/core/suite';
import { BLOCKLIST_SCHEMA } from '../plugins/shield/checks/blocklist-config';
import { DNSBL_SCHEMA } from '../plugins/shield/checks/dnsbl-config';
import { LIMIT_SCHEMA } from '../plugins/shield/checks/limit-config';
import { RDNS_SCHEMA } from '../plugins/shield/checks/rdns-config';
import { RELAY_SCHEMA } from '../plugins/shield/checks/relay-config';
import { CliError, LISTS_USAGE, listsCommand } from './list-commands';

const PKG_ROOT = path.resolve(__dirname, '..');

function usage(code: number): never {
  const text = `usage:
  haraka-shield install [--enable NAME[,NAME...]] [DIR]   link the plugins into a Haraka instance (default: .)
  haraka-shield config [PLUGIN]                          list config keys, types, defaults and docs
  haraka-shield block|allow add|remove|list|test ...     shared block and allow entries (block --help)
  haraka-shield --help

${LISTS_USAGE}`;
  (code === 0 ? console.log : console.error)(text);
  process.exit(code);
}

function fail(msg: string): never {
  console.error(`haraka-shield: ${msg}`);
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

export function install(dir: string, enable: string[]): string[] {
  const done: string[] = [];
  const inst = path.resolve(dir);
  if (!fs.existsSync(path.join(inst, 'config')) || !fs.existsSync(path.join(inst, 'config', 'smtp.ini'))) {
    fail(`${inst} is not a Haraka instance (no config/smtp.ini); create one with: haraka -i ${inst}`);
  }
  const plugins = shippedPlugins();
  if (plugins.length === 0) fail(`no built plugins in ${PKG_ROOT}/plugins (run npm run build)`);
  for (const name of enable) if (!plugins.includes(name)) fail(`--enable ${name}: not a shield plugin (have: ${plugins.join(', ')})`);

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
    const have = new Set(current.split(/\r?\n/).map((l) => l.trim()));
    const add = enable.filter((n) => !have.has(n));
    if (add.length) {
      // shield plugins go first, so shield.relay runs before any recipient plugin of the same priority
      fs.writeFileSync(listFile, `# haraka-shield\n${add.join('\n')}\n\n${current}`);
      done.push(`config/plugins: enabled ${add.join(', ')}`);
    }
  }
  return done;
}

/**
 * Every config file and its schema, in the order `config` prints them: the suite's, then the
 * plugins' by name. The schemas come from the checks' *-config modules, never from the plugin
 * adapters (plugins/shield.<name>.js): loading an adapter pulls in the plugin and its hooks.
 */
export const CONFIG_SCHEMAS: ReadonlyArray<readonly [file: string, schema: Parameters<typeof describeSchema>[0]]> = [
  ['shield.ini', SUITE_SCHEMA as never],
  ['shield.blocklist.ini', BLOCKLIST_SCHEMA],
  ['shield.dnsbl.ini', DNSBL_SCHEMA],
  ['shield.limit.ini', LIMIT_SCHEMA],
  ['shield.rdns.ini', RDNS_SCHEMA],
  ['shield.relay.ini', RELAY_SCHEMA],
];

function printConfig(plugin: string | undefined): void {
  for (const [file, schema] of CONFIG_SCHEMAS) {
    if (plugin && file !== `${plugin}.ini` && file !== plugin) continue;
    console.log(file);
    for (const row of describeSchema(schema)) {
      console.log(`  [${row.section}] ${row.key} (${row.kind}, default ${JSON.stringify(row.default)}): ${row.doc}`);
    }
  }
}

function main(argv: string[]): void {
  if (argv[0] === 'block' || argv[0] === 'allow') {
    const io = { out: (l: string) => console.log(l), err: (l: string) => console.error(`haraka-shield: ${l}`) };
    listsCommand(argv[0], argv.slice(1), io).then(
      (code) => process.exit(code),
      (err: unknown) => {
        if (err instanceof CliError) fail(err.message);
        console.error(err);
        process.exit(1);
      },
    );
    return;
  }
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') usage(cmd ? 0 : 2);
  if (cmd === 'install') {
    const enable: string[] = [];
    const positional: string[] = [];
    for (let i = 0; i < rest.length; i++) {
      const a = rest[i] as string;
      if (a === '--enable') enable.push(...String(rest[++i] ?? '').split(',').filter(Boolean));
      else if (a.startsWith('--enable=')) enable.push(...a.slice(9).split(',').filter(Boolean));
      else if (a.startsWith('-')) fail(`unknown option ${a}`);
      else positional.push(a);
    }
    if (positional.length > 1) usage(2);
    for (const line of install(positional[0] ?? process.cwd(), enable)) console.log(line);
    return;
  }
  if (cmd === 'config') return printConfig(rest[0]);
  console.error(`haraka-shield: unknown command ${cmd}`);
  usage(2);
}

if (require.main === module) main(process.argv.slice(2));
