/**
 * Typed configuration. Each plugin declares its schema once (type, default, documentation,
 * conversion); `parseConfig` turns the raw ini object that Haraka's config loader returns into a
 * deeply frozen typed object, and refuses unknown sections, unknown keys and bad values with a
 * ConfigError naming file, section and key. `ConfigHandle` loads a file through Haraka, reloads it
 * when it changes and keeps the last good config when the new file is bad.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, errorMessage } from './errors';
import type { HarakaPlugin } from './haraka';

/** What haraka-config hands us for one ini value: it turns integers and floats into numbers. */
export type RawValue = string | number | boolean | RawValue[] | undefined;

export interface Field<T> {
  readonly kind: string;
  readonly default: T;
  readonly doc: string;
  /** the value is free text in which ";" and "#" are ordinary characters (reply texts, URLs, regular expressions) */
  readonly free?: boolean;
  /** the key has no default: a file (or section) without it is an error */
  readonly required?: boolean;
  /** 0 means disabled, and "off" is accepted for it (shown as off) */
  readonly off?: boolean;
  /** converts a raw ini value; throws Error with a human message when the value is bad */
  parse(raw: Exclude<RawValue, undefined>): T;
}

export type Schema = Record<string, Record<string, Field<unknown>>>;
export type SchemaOf<S> = { readonly [K in keyof S]: { readonly [F in keyof S[K]]: S[K][F] extends Field<infer T> ? T : never } };

function scalar(raw: Exclude<RawValue, undefined>): string {
  if (Array.isArray(raw)) throw new Error('expected a single value, got a list (key[] =)');
  return String(raw).trim();
}

const TRUE = new Set(['true', 'yes', 'on', '1', 'enabled']);
const FALSE = new Set(['false', 'no', 'off', '0', 'disabled']);

const DURATION_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** "250ms", "30s", "5m", "2h", "7d", "1w" or a bare number of seconds -> seconds */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?$/i.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a duration: a number with a unit ms, s, m, h, d or w (e.g. 250ms, 30s, 5m, 2h, 7d), or a bare number of seconds`);
  const unit = (m[2] ?? 's').toLowerCase();
  return Number(m[1]) * (DURATION_UNITS[unit] as number);
}

export interface Rate {
  readonly limit: number;
  readonly windowSec: number;
}

/** "30/1m", "500/1h", "2000/1d" -> { limit, windowSec } */
export function parseRate(text: string): Rate {
  const m = /^(\d+)\s*\/\s*(.+)$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a rate: write N/window, e.g. 30/1m, 500/1h, 2000/1d (or off)`);
  let windowSec: number;
  try {
    windowSec = parseDuration((m[2] as string).replace(/^([a-z]+)$/i, '1$1'));
  } catch {
    throw new Error(`"${text}" is not a rate: the window after "/" is a duration such as 30s, 1m, 5m, 1h, 1d or 1w (or a bare unit: m, h, d)`);
  }
  if (windowSec <= 0) throw new Error(`"${text}": the window must be longer than zero`);
  if (Number(m[1]) < 1) throw new Error(`"${text}": the limit must be at least 1 (write off for no limit)`);
  return { limit: Number(m[1]), windowSec };
}

/** "off": the one word for "disabled" in every setting where 0 means disabled (counts, scores, intervals) */
const OFF = 'off';

function numberField(kind: 'number' | 'integer', shape: RegExp, def: number, doc: string, opts: { min?: number; max?: number; off?: boolean }): Field<number> {
  return {
    kind,
    default: def,
    doc,
    off: opts.off,
    parse(raw) {
      const s = scalar(raw);
      if (opts.off && s.toLowerCase() === OFF) return 0;
      if (!shape.test(s)) throw new Error(`"${s}" is not ${kind === 'integer' ? 'an integer' : 'a number'}`);
      const n = Number(s);
      if (opts.min !== undefined && n < opts.min) throw new Error(`${n} is below the minimum ${opts.min}`);
      if (opts.max !== undefined && n > opts.max) throw new Error(`${n} is above the maximum ${opts.max}`);
      return n;
    },
  };
}

/** Builders for schema fields. */
export const f = {
  /**
   * A key an earlier version had: accepted so an upgrade does not stop Haraka, ignored, and logged
   * as a warning saying where the setting went (`moved`).
   */
  retired(moved: string): Field<undefined> {
    return { kind: 'retired', default: undefined, doc: `retired: ${moved}`, parse: () => undefined };
  },
  bool(def: boolean, doc: string): Field<boolean> {
    return {
      kind: 'boolean',
      default: def,
      doc,
      parse(raw) {
        if (typeof raw === 'boolean') return raw;
        const s = scalar(raw).toLowerCase();
        if (TRUE.has(s)) return true;
        if (FALSE.has(s)) return false;
        throw new Error(`"${s}" is not a boolean (true/false)`);
      },
    };
  },
  /** a decimal number: "1", "0.5", "-2" */
  num(def: number, doc: string, opts: { min?: number; max?: number; off?: boolean } = {}): Field<number> {
    return numberField('number', /^-?\d+(\.\d+)?$/, def, doc, opts);
  },
  int(def: number, doc: string, opts: { min?: number; max?: number; off?: boolean } = {}): Field<number> {
    return numberField('integer', /^-?\d+$/, def, doc, opts);
  },
  str(def: string, doc: string, opts: { pattern?: RegExp; free?: boolean; required?: boolean } = {}): Field<string> {
    return {
      kind: 'string',
      default: def,
      doc,
      free: opts.free,
      required: opts.required,
      parse(raw) {
        const s = scalar(raw);
        if (opts.required && !s) throw new Error('must not be empty');
        if (opts.pattern && !opts.pattern.test(s)) throw new Error(`"${s}" does not match ${String(opts.pattern)}`);
        return s;
      },
    };
  },
  /** a file name in config/ ('' = none): no absolute path, no ".." (Haraka reads only inside config/) */
  file(def: string, doc: string): Field<string> {
    return {
      kind: 'file name',
      default: def,
      doc,
      parse(raw) {
        const s = scalar(raw);
        if (s.startsWith('/') || s.split(/[\\/]/).includes('..')) throw new Error(`"${s}" is outside config/: give a file name in config/ (Haraka reads only there)`);
        return s;
      },
    };
  },
  oneOf<T extends string>(choices: readonly T[], def: T, doc: string): Field<T> {
    return {
      kind: `one of ${choices.join(' | ')}`,
      default: def,
      doc,
      parse(raw) {
        const s = scalar(raw).toLowerCase();
        if (!(choices as readonly string[]).includes(s)) throw new Error(`"${s}" is not one of ${choices.join(', ')}`);
        return s as T;
      },
    };
  },
  /**
   * a list: "a, b c" on one line (comma and white space separate items), or `key[] = a` repeated;
   * with `whole`, each line is one item (for items that contain spaces or commas, such as regular
   * expressions)
   */
  list(def: readonly string[], doc: string, item?: (s: string) => string, opts: { whole?: boolean } = {}): Field<readonly string[]> {
    return {
      kind: 'list',
      default: def,
      doc,
      free: opts.whole,
      parse(raw) {
        const parts = (Array.isArray(raw) ? raw : [raw])
          .flatMap((v) => (opts.whole ? [String(v)] : String(v).split(/[\s,]+/)))
          .map((s) => s.trim())
          .filter(Boolean);
        return item ? parts.map(item) : parts;
      },
    };
  },
  /** a duration in seconds: "30s", "5m", "250ms" */
  duration(defSec: number, doc: string, opts: { min?: number; max?: number; off?: boolean } = {}): Field<number> {
    return {
      kind: 'duration',
      default: defSec,
      doc,
      off: opts.off,
      parse(raw) {
        const text = scalar(raw);
        if (opts.off && text.toLowerCase() === OFF) return 0;
        const sec = parseDuration(text);
        if (opts.min !== undefined && sec < opts.min) throw new Error(`${sec}s is below the minimum ${opts.min}s`);
        if (opts.max !== undefined && sec > opts.max) throw new Error(`${sec}s is above the maximum ${opts.max}s`);
        return sec;
      },
    };
  },
  /** a rate "N/window" (e.g. 30/1m); empty means no limit (null) */
  rate(def: Rate | null, doc: string): Field<Rate | null> {
    return {
      kind: 'rate',
      default: def,
      doc,
      parse(raw) {
        const s = scalar(raw);
        return s === '' || s === '0' || s.toLowerCase() === OFF ? null : Object.freeze(parseRate(s));
      },
    };
  },
} as const;

export function deepFreeze<T>(obj: T): T {
  if (obj && typeof obj === 'object' && !Object.isFrozen(obj)) {
    Object.freeze(obj);
    for (const v of Object.values(obj as object)) deepFreeze(v);
  }
  return obj;
}

/**
 * Haraka's ini reader keeps everything after "=" as the value: "a ; comment" or "a # comment" would
 * silently become part of it (for a list, more items). Comments go on their own line.
 */
function refuseInlineComment(raw: Exclude<RawValue, undefined>): void {
  for (const v of Array.isArray(raw) ? raw : [raw]) {
    if (typeof v === 'string' && /[;#]/.test(v)) {
      throw new Error(`"${v.trim()}": a value may not contain ";" or "#" (a comment goes on a line of its own, starting with ";" or "#")`);
    }
  }
}

/** edit distance with transpositions (optimal string alignment), for "did you mean" */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[];
      const up = d[i - 1] as number[];
      row[j] = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1);
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/** "; did you mean networks?" for a name one or two edits away from a known one, else "" */
export function didYouMean(name: string, known: readonly string[]): string {
  const n = name.toLowerCase();
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(n, k.toLowerCase());
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best !== null && bestD <= Math.max(1, Math.min(2, Math.floor(name.length / 3))) ? `; did you mean ${best}?` : '';
}

/**
 * Raw ini object -> frozen typed config. Sections and keys not in the schema are errors (a typo must
 * not silently fall back to a default); a missing key takes its default. With `onError`, every
 * problem is reported there and parsing goes on (a bad key takes its default): `haraka-shield
 * check` shows them all at once; without it the first one throws.
 */
export function parseConfig<S extends Schema>(
  file: string,
  schema: S,
  raw: Record<string, Record<string, RawValue> | undefined> | null | undefined,
  /** told about each retired key the file still sets */
  warn: (message: string) => void = () => undefined,
  onError?: (err: ConfigError) => void,
): SchemaOf<S> {
  const fail = (err: ConfigError): void => {
    if (!onError) throw err;
    onError(err);
  };
  const out: Record<string, Record<string, unknown>> = {};
  const rawObj = raw ?? {};
  const sections = Object.keys(schema);
  for (const section of Object.keys(rawObj)) {
    if (!(section in schema)) {
      const sect = rawObj[section];
      // haraka-config always adds an empty [main]
      if (section === 'main' && sect && Object.keys(sect).length === 0) continue;
      fail(new ConfigError(file, section, undefined, `unknown section (known: ${sections.join(', ')})${didYouMean(section, sections)}`));
    }
  }
  for (const [section, fields] of Object.entries(schema)) {
    const given = rawObj[section] ?? {};
    const keys = Object.keys(fields);
    for (const key of Object.keys(given)) {
      if (!(key in fields)) fail(new ConfigError(file, section, key, `unknown key (known: ${keys.join(', ')})${didYouMean(key, keys)}`));
    }
    const sect: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(fields)) {
      const value = given[key];
      sect[key] = field.default;
      if (value === undefined) {
        if (field.required) fail(new ConfigError(file, section, key, 'required, and missing'));
        continue;
      }
      if (field.kind === 'retired') {
        warn(`${file} [${section}] ${key}: ignored; ${field.doc}`);
        sect[key] = undefined;
        continue;
      }
      try {
        if (!field.free) refuseInlineComment(value);
        sect[key] = field.parse(value);
      } catch (err) {
        fail(new ConfigError(file, section, key, errorMessage(err)));
      }
    }
    out[section] = sect;
  }
  return deepFreeze(out) as SchemaOf<S>;
}

/** The documentation of a schema as rows, for docs and `haraka-shield config` output. */
export function describeSchema(schema: Schema): Array<{ section: string; key: string; kind: string; default: unknown; required: boolean; doc: string }> {
  const rows = [];
  for (const [section, fields] of Object.entries(schema)) {
    for (const [key, field] of Object.entries(fields)) {
      rows.push({ section, key, kind: field.kind, default: field.default, required: field.required === true, doc: field.doc });
    }
  }
  return rows;
}

/**
 * The items of a one-entry-per-line file: "#" at the start of a line or after white space starts a
 * comment (a "#" inside a word, as in an address, is part of it), blank lines are skipped, and a
 * line that `item` rejects goes to `onBad` with its 1-based number instead of taking the list down.
 */
export function parseLines<T>(lines: readonly string[], item: (text: string, lineNo: number) => T, onBad: (lineNo: number, message: string) => void): T[] {
  const out: T[] = [];
  lines.forEach((line, i) => {
    const text = line.replace(/(^|\s)#.*$/, '').trim();
    if (!text) return;
    try {
      out.push(item(text, i + 1));
    } catch (err) {
      onBad(i + 1, errorMessage(err));
    }
  });
  return out;
}

/**
 * What Haraka's ini reader would silently drop or let win: a line that is not `key = value`, a
 * `[section]` or a comment, and a key set twice in one section (the later value wins). Each is a
 * ConfigError naming file, section and line.
 */
export function lintIni(file: string, text: string): ConfigError[] {
  const out: ConfigError[] = [];
  let section = 'main';
  const seen = new Map<string, { line: number; list: boolean }>();
  text.split(/\r\n|\r|\n/).forEach((raw, i) => {
    const line = raw.trim();
    const n = i + 1;
    if (!line || line.startsWith(';') || line.startsWith('#')) return;
    const sect = /^\[([^\]]*)\]$/.exec(line);
    if (sect) {
      section = (sect[1] as string).trim();
      return;
    }
    const kv = /^([^=]+?)\s*=/.exec(line);
    if (!kv) {
      out.push(new ConfigError(file, section, undefined, `line ${n}: "${line.slice(0, 60)}" is not "key = value", a [section] or a comment (Haraka would ignore it)`));
      return;
    }
    const key = (kv[1] as string).trim();
    const list = key.endsWith('[]');
    const name = list ? key.slice(0, -2) : key;
    const id = `${section}\u0000${name}`;
    const first = seen.get(id);
    if (first && !(first.list && list)) {
      out.push(new ConfigError(file, section, name, `line ${n}: set again (first on line ${first.line}); only one value would count: write it once${first.list || list ? ', or every line as key[] =' : ''}`));
      return;
    }
    if (!first) seen.set(id, { line: n, list });
  });
  return out;
}

/**
 * The files Haraka's loader reads for `name`: the core's defaults (root_path) and the instance's
 * overrides (overrides_path); null when the loader does not say (a test double).
 */
export function configFilePaths(config: unknown, name: string): string[] | null {
  const c = config as { root_path?: unknown; overrides_path?: unknown };
  const dirs = [c.root_path, c.overrides_path].filter((d): d is string => typeof d === 'string');
  return dirs.length ? [...new Set(dirs)].map((d) => path.join(d, name)) : null;
}

/** What a config file needs from its owner: Haraka's config loader and a log. */
export type ConfigHost = Pick<HarakaPlugin, 'config' | 'logerror' | 'loginfo' | 'logwarn'>;

/**
 * A file loaded through Haraka's config loader and parsed. `current` is always a good value: the
 * first load throws on a bad file (Haraka refuses to start, loudly); a later bad edit is logged with
 * file, section and key, and the last good value stays in force. Every listener runs on each good
 * reload, and only then is the reload logged: "reloaded" means applied.
 *
 * Haraka's loader keeps one reload callback per file for the whole process (a second `get` of the
 * same file replaces the first one's callback), so each file has exactly one ConfigFile, owned by
 * the suite's ConfigRegistry; everything that needs the file subscribes to it.
 */
export class ConfigFile<T> {
  current: T;
  private readonly listeners = new Set<(value: T) => void>();
  /** the one callback Haraka's loader gets for this file */
  private readonly changed = (err?: unknown): void => {
    if (err) {
      this.host.logerror(`${this.file}: ${errorMessage(err)}; keeping the last good ${this.file}`);
      return;
    }
    this.reload();
  };

  constructor(
    protected readonly host: ConfigHost,
    readonly file: string,
    readonly type: 'ini' | 'data',
    private readonly parse: (raw: unknown) => T,
    private readonly quiet = false,
  ) {
    this.current = this.read();
  }

  private read(): T {
    // asked every time, so that the loader keeps this file's one callback and its watch
    const raw = this.host.config.get(this.file, this.type, this.changed);
    const paths = configFilePaths(this.host.config, this.file);
    const present = paths ? paths.filter((p) => fs.existsSync(p)) : null;
    // a deleted file: Haraka's loader keeps handing out the old content; it is gone, so it is empty
    if (present && present.length === 0) return this.parse(null);
    if (this.type === 'ini' && present) {
      for (const p of present) {
        const problem = lintIni(this.file, fs.readFileSync(p, 'utf8'))[0];
        if (problem) throw problem;
      }
    }
    return this.parse(raw);
  }

  /** re-read the file and tell every listener; on error keep the last good value and say why */
  reload(): boolean {
    try {
      this.current = this.read();
    } catch (err) {
      this.host.logerror(`${errorMessage(err)}; keeping the last good ${this.file}`);
      return false;
    }
    let applied = true;
    for (const fn of this.listeners) {
      try {
        fn(this.current);
      } catch (err) {
        applied = false;
        this.host.logerror(`applying ${this.file}: ${errorMessage(err)}`);
      }
    }
    if (!this.quiet && applied) this.host.loginfo(`reloaded ${this.file}`);
    return applied;
  }

  /** run `fn` after each good reload (the same function twice is one listener) */
  onChange(fn: (value: T) => void): void {
    this.listeners.add(fn);
  }
}

/** An ini file parsed with a schema into a frozen typed config. */
export class ConfigHandle<S extends Schema> extends ConfigFile<SchemaOf<S>> {
  constructor(
    host: ConfigHost,
    file: string,
    readonly schema: S,
  ) {
    super(host, file, 'ini', (raw) => parseConfig(file, schema, raw as Parameters<typeof parseConfig>[2], (m) => host.logwarn(m)));
  }
}

const NO_LINES: ConfigFile<readonly string[]> = Object.freeze({
  current: Object.freeze([]) as readonly string[],
  file: '',
  type: 'data',
  reload: () => true,
  onChange: () => undefined,
}) as unknown as ConfigFile<readonly string[]>;

/**
 * The suite's config files: one ConfigFile per file for the whole process, whoever asks for it.
 * Plugins never call Haraka's `config.get` for a shield file themselves; facts one plugin owns
 * (relay networks, local domains) are published as objects on the suite, never re-read by another
 * plugin from the owner's files.
 */
export class ConfigRegistry {
  private readonly files = new Map<string, { owner: unknown; handle: ConfigFile<unknown> }>();

  constructor(private readonly host: ConfigHost) {}

  private get<T>(file: string, owner: unknown, make: () => ConfigFile<T>): ConfigFile<T> {
    const have = this.files.get(file);
    if (have) {
      if (have.owner !== owner) throw new Error(`${file} is already loaded with another schema or parser (one owner per file)`);
      return have.handle as ConfigFile<T>;
    }
    const handle = make();
    this.files.set(file, { owner, handle: handle as ConfigFile<unknown> });
    return handle;
  }

  /** an ini file with its schema (the same file with another schema is an error) */
  ini<S extends Schema>(file: string, schema: S, host: ConfigHost = this.host): ConfigHandle<S> {
    return this.get(file, schema, () => new ConfigHandle(host, file, schema)) as ConfigHandle<S>;
  }

  /**
   * an ini file with its own parser (sections that are not a fixed schema, e.g. DNSBL zones);
   * `owner` names the one parser of this file
   */
  parsed<T>(file: string, owner: string, parse: (raw: unknown) => T, host: ConfigHost = this.host): ConfigFile<T> {
    return this.get(file, `parser:${owner}`, () => new ConfigFile(host, file, 'ini', parse));
  }

  /** a one-entry-per-line file, as raw lines ('' = no file: always empty); a missing file is empty */
  lines(file: string, host: ConfigHost = this.host): ConfigFile<readonly string[]> {
    if (!file) return NO_LINES;
    return this.get(file, 'lines', () => new ConfigFile(host, file, 'data', (raw) => Object.freeze([...((raw as string[] | null) ?? [])]), true));
  }

  /**
   * Haraka's own `config/me` (this host's name). Read at each use, without a callback: Haraka's core
   * reads it too, and its loader refreshes the value when the file changes.
   */
  me(): string {
    return String(this.host.config.get('me') ?? '').trim();
  }
}
