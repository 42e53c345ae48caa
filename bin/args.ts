/**
 * The CLI's argument reader: options and positionals, with every mistake a one-line CliError.
 *
 * Unlike node's parseArgs, a string option takes the next word as its value even when that word
 * starts with "-" (so `--ttl -5s` reaches the duration check and gets its own one-line answer
 * instead of three lines about ambiguous arguments), unless that word is itself one of the
 * command's options (`--ttl --json` is a missing value). `--name=value` works for every string
 * option; `--` ends the options.
 */

/** a user mistake: one line on stderr, exit 1, nothing written */
export class CliError extends Error {}

export type OptionSpec = Readonly<Record<string, 'string' | 'boolean' | 'list'>>;

export interface ParsedArgs {
  /** string options: the last value given; list options: every value, comma-separated ones split */
  readonly strings: ReadonlyMap<string, string>;
  readonly lists: ReadonlyMap<string, readonly string[]>;
  readonly flags: ReadonlySet<string>;
  readonly positionals: readonly string[];
}

export function parseCliArgs(args: readonly string[], spec: OptionSpec): ParsedArgs {
  const strings = new Map<string, string>();
  const lists = new Map<string, string[]>();
  const flags = new Set<string>();
  const positionals: string[] = [];
  const known = (word: string): boolean => word.startsWith('--') && word.slice(2).split('=')[0] as string in spec;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.startsWith('--') ? a.slice(2, eq === -1 ? undefined : eq) : '';
    const type = name ? spec[name] : undefined;
    if (!type) {
      const shown = eq === -1 ? a : a.slice(0, eq);
      const opts = Object.keys(spec).map((k) => `--${k}`);
      throw new CliError(`unknown option ${shown}${opts.length ? ` (options: ${opts.join(', ')})` : ' (this command takes no options)'}`);
    }
    if (type === 'boolean') {
      if (eq !== -1) throw new CliError(`--${name} takes no value (got ${a})`);
      flags.add(name);
      continue;
    }
    let value: string;
    if (eq !== -1) value = a.slice(eq + 1);
    else {
      const next = args[i + 1];
      if (next === undefined || known(next) || next === '--') throw new CliError(`--${name} needs a value`);
      value = next;
      i++;
    }
    if (type === 'string') strings.set(name, value);
    else lists.set(name, [...(lists.get(name) ?? []), ...value.split(',').map((s) => s.trim()).filter(Boolean)]);
  }
  return { strings, lists, flags, positionals };
}

/** One line for any error: the first line of its message, for a stderr line starting `haraka-shield: `. */
export function oneLine(message: string): string {
  return message.replace(/\s*\r?\n[\s\S]*$/, '').trim() || 'failed';
}
