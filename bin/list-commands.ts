/**
 * `haraka-shield block|allow ...`: manage the shared block and allow entries of a Haraka instance
 * with the same config/ and the same Redis the plugin uses, and test what a client would get.
 */
import { errorMessage } from '../plugins/shield/core/errors';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { ConfigHandle, parseDuration, type SchemaOf } from '../plugins/shield/core/config';
import type { HarakaConfig } from '../plugins/shield/core/haraka';
import { ENTRY_KINDS, SharedLists, parseEntryText, readListFiles, type EntryKind, type ListEntry, type ListName } from '../plugins/shield/core/list-entries';
import { parseIp } from '../plugins/shield/core/net';
import { formatReply } from '../plugins/shield/core/policy';
import { RedisStore } from '../plugins/shield/core/redis-store';
import { createRedisClient, describeEndpoint, redisEndpointFromIni, withTimeout, type RedisClient } from '../plugins/shield/core/shared-store';
import { SUITE_SCHEMA } from '../plugins/shield/core/suite';
import { EntryIndex, Lists, checkAddress, checkClient, checkHelo, type ClientVerdict } from '../plugins/shield/checks/list-match';
import { BLOCKLIST_SCHEMA } from '../plugins/shield/checks/blocklist-config';
import { addressReplies, clientReplies } from '../plugins/shield/checks/list-replies';

import { CliError, parseCliArgs } from './args';

export { CliError };

export const LISTS_USAGE = `usage:
  haraka-shield block add ENTRY... [--kind KIND] [--ttl DURATION] [--reason TEXT] [--source TEXT]
  haraka-shield block remove ENTRY... [--kind KIND]
  haraka-shield block list [--kind KIND] [--json]
  haraka-shield block test IP [--helo NAME] [--rdns NAME] [--from ADDRESS] [--rcpt ADDRESS]
  haraka-shield allow add|remove|list ...            (the same, for allow entries)
options:
  --config DIR   the Haraka instance (default: $HARAKA, else the current directory)
  --kind KIND    ip, domain (client rDNS/HELO name), sender or rcpt; guessed when left out:
                 an IP or CIDR is ip, user@domain is sender, anything else is domain
  --ttl D        expire the entry after D (30m, 12h, 7d, 4w); default: never
entries: 192.0.2.7, 198.51.100.0/24, 2001:db8::/48, host.example.com, user@example.com, example.org,
         or with the kind written as in the files: rcpt:old@example.com, sender:example.org
Shared entries live in the store of config/shield.ini ([store], Redis from config/redis.ini); the
entries in config/shield.blocklist.block|allow are listed and tested too, but edited in the files.`;

interface Instance {
  dir: string;
  config: HarakaConfig;
  suite: SchemaOf<typeof SUITE_SCHEMA>;
  blocklist: SchemaOf<typeof BLOCKLIST_SCHEMA>;
}

function loadInstance(dir: string): Instance {
  const inst = path.resolve(dir);
  if (!fs.existsSync(path.join(inst, 'config'))) throw new CliError(`${inst} is not a Haraka instance (no config/ directory); use --config DIR`);
  const hc = require('haraka-config') as { module_config(p: string): HarakaConfig };
  const config = hc.module_config(inst);
  const host = { config, logerror: () => undefined, loginfo: () => undefined, logwarn: () => undefined };
  try {
    return {
      dir: inst,
      config,
      suite: new ConfigHandle(host, 'shield.ini', SUITE_SCHEMA).current,
      blocklist: new ConfigHandle(host, 'shield.blocklist.ini', BLOCKLIST_SCHEMA).current,
    };
  } catch (err) {
    throw new CliError(errorMessage(err));
  }
}

function fileEntries(inst: Instance, warn: (m: string) => void): ListEntry[] {
  return readListFiles(inst.config, inst.blocklist.main, (file, n, msg) => warn(`config/${file} line ${n}: ${msg} (skipped)`));
}

/** the shared store of the instance: Redis, or null with the memory backend */
async function openStore(inst: Instance): Promise<{ lists: SharedLists; where: string; close(): Promise<void> } | null> {
  if (inst.suite.store.backend === 'memory') return null;
  const ep = redisEndpointFromIni(inst.config.get('redis.ini', 'ini'));
  const where = describeEndpoint(ep);
  const client: RedisClient = createRedisClient(ep, { reconnect: false, connectTimeoutMs: 3000 });
  let lastError = '';
  client.on('error', (e: unknown) => (lastError = errorMessage(e)));
  try {
    await withTimeout(client.connect(), 4000, () => new Error('timed out'));
  } catch (err) {
    try {
      client.destroy?.();
    } catch {
      /* never connected: nothing to close */
    }
    throw new CliError(`cannot reach Redis at ${where} (${lastError || (errorMessage(err))}); nothing was changed`);
  }
  return {
    lists: new SharedLists(new RedisStore(client, inst.suite.store.prefix)),
    where: `${where} prefix ${inst.suite.store.prefix}`,
    close: async () => {
      client.destroy?.();
    },
  };
}

function memoryBackendError(): CliError {
  return new CliError(
    'config/shield.ini has [store] backend = memory: each Haraka process keeps shared entries in its own memory, out of reach of this tool. Put the entry in config/shield.blocklist.block (or .allow), which Haraka reloads live, or configure Redis.',
  );
}

function kindOpt(v: string | undefined): EntryKind | undefined {
  if (v === undefined) return undefined;
  if (!ENTRY_KINDS.includes(v as EntryKind)) throw new CliError(`--kind ${v}: must be one of ${ENTRY_KINDS.join(', ')}`);
  return v as EntryKind;
}

/** --ttl: a positive duration of at least a second */
export function ttlOpt(text: string): number {
  const t = text.trim();
  if (t.startsWith('-') || /^0+(\.0*)?\s*[a-z]*$/i.test(t)) throw new CliError(`--ttl ${text}: must be a positive duration (30m, 12h, 7d)`);
  let sec: number;
  try {
    sec = parseDuration(t);
  } catch (err) {
    throw new CliError(`--ttl: ${errorMessage(err)}`);
  }
  if (!(sec >= 1)) throw new CliError(`--ttl ${text}: must be at least 1s`);
  // an entry meant to last longer than ten years is a permanent one: say so instead
  if (sec > 10 * 365 * 86400) throw new CliError(`--ttl ${text}: at most 10 years (520w); leave --ttl out for an entry that never expires`);
  return sec;
}

function when(ms: number | null): string {
  return ms === null ? 'never' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ')).join('\n');
}

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

/** Run `block|allow <sub> ...`; returns the exit code. */
export async function listsCommand(list: ListName, argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h') {
    io.out(LISTS_USAGE);
    return sub ? 0 : 2;
  }
  const args = parseCliArgs(rest, {
    config: 'string',
    kind: 'string',
    ttl: 'string',
    reason: 'string',
    source: 'string',
    json: 'boolean',
    helo: 'string',
    rdns: 'string',
    from: 'string',
    rcpt: 'string',
  });
  const opt = (name: string): string | undefined => args.strings.get(name);
  const o = {
    config: opt('config'),
    kind: opt('kind'),
    ttl: opt('ttl'),
    reason: opt('reason'),
    source: opt('source'),
    json: args.flags.has('json'),
    helo: opt('helo'),
    rdns: opt('rdns'),
    from: opt('from'),
    rcpt: opt('rcpt'),
  };
  const positionals = args.positionals;
  const kind = kindOpt(o.kind);
  const inst = loadInstance(o.config ?? process.env.HARAKA ?? process.cwd());

  switch (sub) {
    case 'add':
    case 'remove': {
      if (!positionals.length) throw new CliError(`${list} ${sub}: give at least one entry`);
      // validate everything before writing anything
      const items = positionals.map((p) => {
        try {
          return parseEntryText(p, kind);
        } catch (err) {
          throw new CliError(errorMessage(err));
        }
      });
      const ttlSec = sub === 'add' && o.ttl !== undefined ? ttlOpt(o.ttl) : null;
      if (sub === 'remove' && o.ttl !== undefined) throw new CliError(`${list} remove: --ttl is for add`);
      const store = await openStore(inst);
      if (!store) throw memoryBackendError();
      try {
        for (const it of items) {
          if (sub === 'add') {
            const source = o.source ?? `cli:${os.userInfo().username}@${os.hostname()}`;
            await store.lists.add({ list, kind: it.kind, value: it.value, ttlSec, reason: o.reason ?? '', source });
            io.out(`added ${list} ${it.kind} ${it.value}${ttlSec ? ` (expires ${when(Date.now() + ttlSec * 1000)})` : ''} in ${store.where}`);
          } else if (await store.lists.remove(list, it.kind, it.value)) {
            io.out(`removed ${list} ${it.kind} ${it.value} from ${store.where}`);
          } else {
            const inFile = fileEntries(inst, () => undefined).find((e) => e.list === list && e.kind === it.kind && e.value === it.value);
            throw new CliError(
              inFile
                ? `${list} ${it.kind} ${it.value} is not in the shared store; it comes from config/${inFile.source.replace(/:(\d+)$/, ' line $1')}: edit that file`
                : `${list} ${it.kind} ${it.value} is not in the shared store`,
            );
          }
        }
      } finally {
        await store.close();
      }
      return 0;
    }

    case 'list': {
      let entries = fileEntries(inst, io.err).filter((e) => e.list === list);
      const store = await openStore(inst);
      if (store) {
        try {
          entries = entries.concat((await store.lists.entries()).filter((e) => e.list === list));
        } finally {
          await store.close();
        }
      }
      const shown = entries.filter((e) => !kind || e.kind === kind).sort((a, b) => a.kind.localeCompare(b.kind) || a.value.localeCompare(b.value));
      if (o.json) {
        io.out(JSON.stringify(shown.map((e) => ({ ...e, addedAt: e.addedAt && when(e.addedAt), expiresAt: e.expiresAt && when(e.expiresAt) })), null, 2));
      } else if (shown.length === 0) {
        io.out(`no ${list} entries${kind ? ` of kind ${kind}` : ''}`);
      } else {
        io.out(table([['KIND', 'ENTRY', 'EXPIRES', 'SOURCE', 'REASON'], ...shown.map((e) => [e.kind, e.value, when(e.expiresAt), e.source, e.reason])]));
      }
      return 0;
    }

    case 'test': {
      if (list !== 'block') throw new CliError('use: haraka-shield block test IP [...]');
      const ipText = positionals[0];
      const ip = ipText ? parseIp(ipText) : null;
      if (!ip || positionals.length > 1) throw new CliError(`block test: give one client IP address${ipText ? ` ("${ipText}" is not one)` : ''}`);
      let entries = fileEntries(inst, io.err);
      const store = await openStore(inst);
      if (store) {
        try {
          entries = entries.concat(await store.lists.entries());
        } finally {
          await store.close();
        }
      }
      const lists = new Lists([new EntryIndex(entries)]);
      const now = Date.now();
      const opts = inst.blocklist.main;
      const delayed = opts.delay_reject;
      const describe = (v: { match?: { entry: ListEntry } }): string => {
        const e = v.match?.entry;
        return e ? `${e.list} ${e.kind} ${e.value} (${e.source}${e.reason ? `, "${e.reason}"` : ''}${e.expiresAt ? `, expires ${when(e.expiresAt)}` : ''})` : '';
      };
      // no DNS here: an rDNS name given with --rdns is taken as forward-confirmed
      let client: ClientVerdict = await checkClient({ ip: ip.text, ptrNames: o.rdns ? [o.rdns] : [] }, lists, { now, confirm: async () => true });
      if (client.verdict === 'none' && o.helo) client = checkHelo(o.helo, lists, now);
      if (client.verdict === 'none') io.out(`client ${ip.text}: no client entry matches`);
      else {
        io.out(`client ${ip.text}: ${client.verdict} by ${client.by} ${client.subject}: ${describe(client)}${client.by === 'rdns' && client.verdict === 'allow' ? ' (if the name forward-confirms)' : ''}`);
        if (client.verdict === 'allow') io.out('  allowlisted: the reputation checks skip this client; relay control and limits still apply');
        else {
          const stage = client.by === 'helo' ? 'helo' : delayed ? 'rcpt' : 'connect';
          io.out(`  reply at ${stage === 'rcpt' ? `RCPT (delay_reject; ${inst.suite.main.exempt_rcpts.join(', ')} exempt)` : stage}: ${formatReply(clientReplies(opts, client, stage).reject)}`);
        }
      }
      for (const [k, addr] of [['sender', o.from], ['rcpt', o.rcpt]] as Array<['sender' | 'rcpt', string | undefined]>) {
        if (addr === undefined) continue;
        const v = checkAddress(k, addr, lists, now);
        if (v.verdict === 'none') io.out(`${k} ${addr}: no entry matches`);
        else {
          io.out(`${k} ${v.address}: ${v.verdict}: ${describe(v)}`);
          if (v.verdict === 'block') io.out(`  reply at ${k === 'sender' ? 'MAIL' : 'RCPT'}: ${formatReply(addressReplies(opts, k, v).reject)}`);
        }
      }
      return 0;
    }

    default:
      throw new CliError(`${list}: unknown subcommand ${sub} (add, remove, list${list === 'block' ? ', test' : ''})`);
  }
}
