/**
 * `haraka-shield config [PLUGIN] [--effective] [--json] [--config DIR]`: every key of every shield
 * config file with its documentation and default, written the way the ini files write values
 * (250ms, 60/1m, off, comma-separated lists, true/false), so the output can be pasted into a file.
 * With --effective, this instance's values (config/<file>), loaded with the same schema and checks
 * the plugins use: a bad file is one line naming file, section and key, and exit 1.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigHandle, parseConfig, type Field, type Rate, type RawValue, type Schema } from '../plugins/shield/core/config';
import { errorMessage } from '../plugins/shield/core/errors';
import type { HarakaConfig } from '../plugins/shield/core/haraka';
import { DNSBL_FILE, DNSBL_SCHEMA, parseDnsblConfig } from '../plugins/shield/checks/dnsbl-config';
import { CliError, parseCliArgs } from './args';

export const CONFIG_USAGE = `usage: haraka-shield config [PLUGIN] [--effective] [--json] [--config DIR]
  PLUGIN       relay, shield.relay or shield.relay.ini (shield for shield.ini); default: every file
  --effective  this instance's values next to the defaults (config/ of --config DIR, $HARAKA or .)
  --json       machine-readable output`;

/** one config file and the schema that reads it */
export type ConfigFile = readonly [file: string, schema: Schema];

/** the section name DNSBL_SCHEMA uses for "one section per zone" */
const ZONE_SECTION = '<zone name>';

const UNITS: ReadonlyArray<readonly [string, number]> = [
  ['d', 86400],
  ['h', 3600],
  ['m', 60],
  ['s', 1],
];

/** seconds -> the shortest exact duration as the files write it: 250ms, 30s, 5m, 2h, 1d */
export function formatDuration(sec: number): string {
  if (sec === 0) return '0s';
  for (const [unit, size] of UNITS) {
    const n = sec / size;
    if (Number.isInteger(n)) return `${n}${unit}`;
  }
  const ms = Math.round(sec * 1e6) / 1e3;
  return `${ms}ms`;
}

/** {limit, windowSec} -> "60/1m"; null -> off */
export function formatRate(rate: Rate | null): string {
  return rate === null ? 'off' : `${rate.limit}/${formatDuration(rate.windowSec)}`;
}

function isRate(v: unknown): v is Rate {
  return typeof v === 'object' && v !== null && typeof (v as Rate).limit === 'number' && typeof (v as Rate).windowSec === 'number';
}

/**
 * A value of a field as an ini file writes it. A list whose items hold spaces or commas (one item
 * per line, such as dnsbl's listed[]) comes back as several values, one `key[] = item` line each.
 */
export function formatValue(field: Pick<Field<unknown>, 'kind'> & { readonly free?: boolean; readonly off?: boolean }, value: unknown): { text: string; lines?: readonly string[] } {
  // 0 where 0 means disabled: the one word for it
  if (field.off && value === 0) return { text: 'off' };
  switch (field.kind) {
    case 'duration':
      return { text: typeof value === 'number' ? formatDuration(value) : String(value) };
    case 'rate':
      return { text: value === null ? 'off' : isRate(value) ? formatRate(value) : String(value) };
    case 'boolean':
      return { text: value ? 'true' : 'false' };
    case 'list': {
      const items = Array.isArray(value) ? value.map(String) : [];
      // free-text items (one per line in the file) or items with separators in them: key[] lines
      if (items.length && (field.free || items.some((i) => /[\s,]/.test(i)))) return { text: items.join(', '), lines: items };
      return { text: items.join(', ') };
    }
    default:
      return { text: value === undefined || value === null ? '' : String(value) };
  }
}

/** one key as `config` shows it */
export interface KeyRow {
  section: string;
  key: string;
  kind: string;
  doc: string;
  /** as the ini file writes it */
  default: string;
  /** --effective: this instance's value, as the ini file writes it */
  value?: string;
  /** --effective: set in this instance's file (differs from the default) */
  changed?: boolean;
  /** a list whose items hold spaces or commas: the items, one `key[] = item` line each */
  defaultItems?: readonly string[];
  valueItems?: readonly string[];
}

export interface FileReport {
  file: string;
  /** --effective: config/<file> of the instance, or null when the file does not exist */
  path?: string | null;
  keys: KeyRow[];
  /** shield.dnsbl.ini: the zone sections of the instance (--effective), in use or not */
  zones?: Array<{ name: string; inUse: boolean; keys: KeyRow[] }>;
}

/** PLUGIN as the user writes it -> the file name, or a CliError listing the known ones */
export function selectFiles(files: readonly ConfigFile[], plugin: string | undefined): ConfigFile[] {
  if (plugin === undefined) return [...files];
  const want = plugin.trim().toLowerCase().replace(/\.ini$/, '');
  const name = want === 'shield' || want.startsWith('shield.') ? want : `shield.${want}`;
  const hit = files.filter(([file]) => file === `${name}.ini`);
  if (!hit.length) {
    const known = files.map(([file]) => file.replace(/\.ini$/, '').replace(/^shield\./, '')).map((n) => (n === 'shield' ? 'shield' : n));
    throw new CliError(`config ${plugin}: no such plugin (known: ${known.join(', ')})`);
  }
  return hit;
}

function rows(schema: Schema, section: string, values?: Record<string, unknown>): KeyRow[] {
  const out: KeyRow[] = [];
  for (const [key, field] of Object.entries(schema[section] ?? {})) {
    if (field.kind === 'retired') continue;
    const def = formatValue(field, field.default);
    const row: KeyRow = { section, key, kind: field.required ? `${field.kind}, required: no default` : field.kind, doc: field.doc, default: def.text };
    if (def.lines) row.defaultItems = def.lines;
    if (values) {
      const v = formatValue(field, values[key]);
      row.value = v.text;
      row.changed = v.text !== def.text;
      if (v.lines) row.valueItems = v.lines;
    }
    out.push(row);
  }
  return out;
}

interface Host {
  config: HarakaConfig;
  logerror(m: string): void;
  loginfo(m: string): void;
  logwarn(m: string): void;
}

function loadHost(dir: string): { host: Host; configDir: string } {
  const inst = path.resolve(dir);
  const configDir = path.join(inst, 'config');
  if (!fs.existsSync(configDir)) throw new CliError(`${inst} is not a Haraka instance (no config/ directory); use --config DIR`);
  const hc = require('haraka-config') as { module_config(p: string): HarakaConfig };
  const config = hc.module_config(inst);
  return { host: { config, logerror: () => undefined, loginfo: () => undefined, logwarn: () => undefined }, configDir };
}

/** The report of one file: defaults, and with `host` this instance's values. */
export function fileReport(file: string, schema: Schema, inst?: { host: Host; configDir: string }): FileReport {
  if (!inst) {
    const report: FileReport = { file, keys: Object.keys(schema).filter((s) => s !== ZONE_SECTION).flatMap((s) => rows(schema, s)) };
    if (file === DNSBL_FILE) report.zones = [{ name: ZONE_SECTION, inUse: false, keys: rows(schema, ZONE_SECTION) }];
    return report;
  }
  const filePath = path.join(inst.configDir, file);
  const exists = fs.existsSync(filePath);
  try {
    if (file === DNSBL_FILE) {
      const raw = inst.host.config.get(file, 'ini') as Record<string, Record<string, RawValue>> | null;
      const parsed = parseDnsblConfig(raw);
      const report: FileReport = { file, path: exists ? filePath : null, keys: rows(schema, 'main', parsed.main as Record<string, unknown>), zones: [] };
      const sections = Object.keys(raw ?? {}).filter((s) => s !== 'main');
      // zones in use first, in [main] zones order; then the ones defined but not used
      const ordered = [...parsed.main.zones, ...sections.filter((s) => !parsed.main.zones.includes(s))];
      for (const name of ordered) {
        const values = parseConfig(file, { [name]: DNSBL_SCHEMA[ZONE_SECTION] }, { [name]: (raw ?? {})[name] ?? {} })[name] as Record<string, unknown>;
        report.zones?.push({ name, inUse: parsed.main.zones.includes(name), keys: rows({ [name]: DNSBL_SCHEMA[ZONE_SECTION] }, name, values) });
      }
      return report;
    }
    const current = new ConfigHandle(inst.host, file, schema).current as Record<string, Record<string, unknown>>;
    return { file, path: exists ? filePath : null, keys: Object.keys(schema).flatMap((s) => rows(schema, s, current[s])) };
  } catch (err) {
    throw new CliError(errorMessage(err));
  }
}

/** "; doc" lines, wrapped near 100 columns */
function comment(text: string): string[] {
  const out: string[] = [];
  let line = ';';
  for (const word of text.split(/\s+/)) {
    if (line.length + word.length + 1 > 100 && line !== ';') {
      out.push(line);
      line = ';';
    }
    line += ` ${word}`;
  }
  out.push(line);
  return out;
}

function keyLines(row: KeyRow, effective: boolean): string[] {
  const shown = effective ? (row.value as string) : row.default;
  const items = effective ? row.valueItems : row.defaultItems;
  const def = row.defaultItems ? row.defaultItems.join(' | ') : row.default;
  const note = effective ? `${row.kind}; default: ${def === '' ? '(empty)' : def}${row.changed ? '; changed' : ''}` : row.kind;
  const out = comment(`${row.doc} [${note}]`);
  if (items) for (const item of items) out.push(`${row.key}[] = ${item}`);
  else out.push(shown === '' ? `${row.key} =` : `${row.key} = ${shown}`);
  return out;
}

/** the text form: an ini file per config file, documentation as comments */
export function formatReports(reports: readonly FileReport[], effective: boolean): string {
  const out: string[] = [];
  for (const r of reports) {
    if (out.length) out.push('');
    const where = effective ? (r.path ? `: this instance's values (${r.path})` : ': not in this instance (defaults apply)') : ': defaults';
    out.push(`;;;; ${r.file}${where}`);
    let section = '';
    for (const row of r.keys) {
      if (row.section !== section) {
        section = row.section;
        out.push('', `[${section}]`);
      }
      out.push(...keyLines(row, effective));
    }
    for (const z of r.zones ?? []) {
      out.push('');
      if (z.name === ZONE_SECTION) out.push('; one section per DNS list, named in [main] zones, e.g. [zen]');
      else if (!z.inUse) out.push(`; not in [main] zones: not queried`);
      out.push(`[${z.name}]`);
      for (const row of z.keys) out.push(...keyLines(row, effective));
    }
  }
  return out.join('\n');
}

/** Run `config ...`; returns the lines to print. */
export function configCommand(argv: readonly string[], files: readonly ConfigFile[]): string {
  const args = parseCliArgs(argv, { effective: 'boolean', json: 'boolean', config: 'string', help: 'boolean' });
  if (args.flags.has('help')) return CONFIG_USAGE;
  if (args.positionals.length > 1) throw new CliError(`config: give at most one plugin (got ${args.positionals.join(' ')})`);
  const chosen = selectFiles(files, args.positionals[0]);
  const effective = args.flags.has('effective');
  if (args.strings.has('config') && !effective) throw new CliError('config: --config DIR goes with --effective (the defaults are the same everywhere)');
  const inst = effective ? loadHost(args.strings.get('config') ?? process.env.HARAKA ?? process.cwd()) : undefined;
  const reports = chosen.map(([file, schema]) => fileReport(file, schema, inst));
  if (args.flags.has('json')) return JSON.stringify(reports, null, 2);
  return formatReports(reports, effective);
}
