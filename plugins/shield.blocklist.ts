/**
 * shield.blocklist: the postmaster's own block and allow lists, from files in config/ and from the
 * shared store (Redis: every node sees a change within sync_interval), managed with
 * `haraka-shield block|allow ...` and fed by other plugins through `suite.lists.blockTemporarily`.
 *
 * Hooks: connect (client IP and rDNS: block, or mark allowlisted), helo/ehlo (HELO name blocks),
 * mail (sender), rcpt (recipients; client blocks too when delay_reject is on).
 */
import { errorMessage } from './shield/core/errors';
import type { ConfigHandle } from './shield/core/config';
import { readListFiles } from './shield/core/list-entries';
import type { HarakaAddress, HarakaConnection, HarakaPlugin } from './shield/core/haraka';
import { reply, type Reply } from './shield/core/policy';
import { registerShield, setupShield, type PluginHandle } from './shield/core/suite';
import { BLOCKLIST_SCHEMA } from './shield/checks/blocklist-config';
import { EntryIndex, Lists, checkAddress, checkClient, checkHelo, type ClientVerdict } from './shield/checks/list-match';
import { catchUp, type SharedState } from './shield/checks/list-sync';
import { addressEvidence, addressReplies, clientEvidence, clientReplies } from './shield/checks/list-replies';

/** for `haraka-shield config` */
export { BLOCKLIST_SCHEMA as SCHEMA } from './shield/checks/blocklist-config';

type RcptParams = [HarakaAddress, Record<string, string | null>];
type MailParams = [HarakaAddress, Record<string, string | null>];

/** what this plugin keeps in the Session */
interface ClientState {
  verdict: ClientVerdict;
}
const STATE = 'blocklist';

interface BlocklistPlugin extends HarakaPlugin {
  shield: PluginHandle;
  cfg: ConfigHandle<typeof BLOCKLIST_SCHEMA>;
  files: EntryIndex;
  /** re-reads the list files (one function, so each file has it once as listener) */
  reloadListFiles: () => void;
  /** entries from Redis (the fleet's), kept through a Redis outage */
  sharedIndex: EntryIndex;
  sharedVersion: number | null;
  /** entries in this node's memory store (memory backend, or added while Redis was down) */
  localIndex: EntryIndex;
  localVersion: number | null;
  /** full reads of the shared entries that failed in a row, and when the next may start (back-off) */
  snapshotFailures: number;
  nextSnapshotAt: number;
  lists: Lists;
  syncing: boolean;
  syncAgain: boolean;
  timer: NodeJS.Timeout | null;
}

function state(plugin: BlocklistPlugin, conn: HarakaConnection): ClientState | undefined {
  return plugin.shield.session(conn).peek<ClientState>(STATE);
}

function readFiles(plugin: BlocklistPlugin): EntryIndex {
  const files = plugin.shield.suite.files;
  const entries = readListFiles(
    (file) => {
      const handle = files.lines(file, plugin);
      // the same listener once per file: an edit of the file rebuilds the index
      handle.onChange(plugin.reloadListFiles);
      return handle.current;
    },
    plugin.cfg.current.main,
    (file, n, msg) => plugin.logerror(`${file} line ${n}: ${msg}; line skipped`),
  );
  return new EntryIndex(entries);
}

function relink(plugin: BlocklistPlugin): void {
  plugin.lists = new Lists([plugin.files, plugin.sharedIndex, plugin.localIndex]);
}

/** re-read the list files; on error the previous entries stay and the error goes up (the reload is then not logged as applied) */
function reloadFiles(plugin: BlocklistPlugin): void {
  try {
    plugin.files = readFiles(plugin);
  } catch (err) {
    throw new Error(`keeping the previous list files: ${errorMessage(err)}`);
  }
  relink(plugin);
  plugin.loginfo(`list files: ${plugin.files.size} entries`);
}

/**
 * Bring the store-held entries up to date: per source (Redis, this node's memory) one small read
 * when nothing changed, the changed entries when something did, everything only when needed (with
 * back-off when that fails). Redis entries are kept while Redis is unreachable.
 */
export async function sync(plugin: BlocklistPlugin): Promise<void> {
  if (plugin.syncing) {
    plugin.syncAgain = true;
    return;
  }
  plugin.syncing = true;
  try {
    const store = plugin.shield.suite.store;
    const shared: SharedState = { index: plugin.sharedIndex, version: plugin.sharedVersion };
    const sharedChanged = await catchUp(
      shared,
      (op, timeoutMs) => store.shared(op, timeoutMs),
      // only while Redis is in use: a read that cannot start (Redis not up yet, breaker open) is no failure
      () => store.backend === 'redis' && Date.now() >= plugin.nextSnapshotAt,
      (ok) => {
        if (ok) {
          if (plugin.snapshotFailures) plugin.loginfo('shared entries read in full again');
          plugin.snapshotFailures = 0;
          return;
        }
        plugin.snapshotFailures++;
        const wait = Math.min(plugin.cfg.current.main.sync_interval * 2 ** plugin.snapshotFailures, 300);
        plugin.nextSnapshotAt = Date.now() + wait * 1000;
        if (plugin.snapshotFailures === 1) plugin.logwarn(`could not read the shared entries in full; trying again with back-off (next in ${wait}s)`);
      },
    );
    plugin.sharedIndex = shared.index;
    plugin.sharedVersion = shared.version;
    const local: SharedState = { index: plugin.localIndex, version: plugin.localVersion };
    const localChanged = await catchUp(
      local,
      async (op) => ({ value: await op(store.memory) }),
      () => true,
      () => undefined,
    );
    plugin.localIndex = local.index;
    plugin.localVersion = local.version;
    if (sharedChanged || localChanged) relink(plugin);
  } catch (err) {
    plugin.logerror(`list sync failed: ${errorMessage(err)}`);
  } finally {
    plugin.syncing = false;
    if (plugin.syncAgain) {
      plugin.syncAgain = false;
      void sync(plugin);
    }
  }
}

function startSync(plugin: BlocklistPlugin): void {
  if (plugin.timer) clearInterval(plugin.timer);
  plugin.timer = setInterval(() => void sync(plugin), plugin.cfg.current.main.sync_interval * 1000);
  plugin.timer.unref();
}

function ptrNames(plugin: BlocklistPlugin, conn: HarakaConnection): string[] {
  const ptr = plugin.shield.session(conn).ptr;
  if (ptr) return [...ptr.names];
  const h = conn.remote.host;
  return h && !/^(NXDOMAIN|DNSERROR|localhost)$/i.test(h) ? [h] : [];
}

/**
 * A block is rejected; a block that stands only because its allow entry could not be confirmed (a
 * DNS fault, evidence `err`) is a block too, and the suite's decision turns an `err` that policy
 * would reject into a defer: that guard, not this plugin, keeps a DNS fault from becoming a 5xx.
 */
function clientReply(plugin: BlocklistPlugin, conn: HarakaConnection, v: ClientVerdict, stage: 'connect' | 'helo' | 'rcpt'): Reply | null {
  return plugin.shield.decide(conn, clientEvidence(v), { fail: 'reject', err: 'reject' }, clientReplies(plugin.cfg.current.main, v, stage)).reply;
}

/** sender or recipient entries: 550 5.7.1 for a block, nothing otherwise */
function addressCheck(plugin: BlocklistPlugin, conn: HarakaConnection, kind: 'sender' | 'rcpt', address: string): Reply | undefined {
  const v = checkAddress(kind, address, plugin.lists, Date.now());
  if (v.verdict === 'none') return undefined;
  const ev = addressEvidence(kind, v);
  plugin.shield.record(conn, ev);
  if (v.verdict === 'allow') return undefined;
  return plugin.shield.decide(conn, ev, { fail: 'reject', err: 'defer' }, addressReplies(plugin.cfg.current.main, kind, v)).reply ?? undefined;
}

export function register(this: BlocklistPlugin): void {
  registerShield(this, () => {
    this.shield = setupShield(this, 'blocklist');
    this.cfg = this.shield.suite.files.ini('shield.blocklist.ini', BLOCKLIST_SCHEMA, this);
    this.reloadListFiles = () => reloadFiles(this);
    this.sharedIndex = new EntryIndex();
    this.sharedVersion = null;
    this.localIndex = new EntryIndex();
    this.localVersion = null;
    this.snapshotFailures = 0;
    this.nextSnapshotAt = 0;
    this.syncing = false;
    this.syncAgain = false;
    this.timer = null;
    this.files = readFiles(this);
    relink(this);
    this.loginfo(`list files: ${this.files.size} entries`);
    this.cfg.onChange(() => {
      startSync(this);
      reloadFiles(this);
    });
    this.shield.suite.onShutdown(() => {
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
    });
    // a change made in this process (blockTemporarily, ...) applies here at once
    this.shield.suite.lists.onChange(() => void sync(this));
    startSync(this);
    void sync(this);

    this.blocklist_connect = this.shield.hook(
      'connect',
      async (conn) => {
        const session = this.shield.session(conn);
        const verdict = await checkClient({ ip: session.identity.ipText, ptrNames: ptrNames(this, conn) }, this.lists, {
          now: Date.now(),
          confirm: (name, ip) => this.shield.suite.resolver.forwardConfirms(name, ip),
          maxNames: this.cfg.current.main.max_rdns_names,
        });
        session.local<ClientState>(STATE, () => ({ verdict })).verdict = verdict;
        for (const name of verdict.dnsErrors ?? []) {
          this.shield.record(conn, { check: 'blocklist', outcome: 'err', reason: 'rdns_confirm', data: { name } });
        }
        if (verdict.verdict === 'none') return undefined;
        this.shield.record(conn, clientEvidence(verdict));
        if (verdict.verdict === 'allow') {
          session.allowlisted = true;
          return undefined;
        }
        if (this.cfg.current.main.delay_reject) return undefined;
        return clientReply(this, conn, verdict, 'connect') ?? undefined;
      },
      () => reply(421, '4.3.0', 'Temporary failure checking the local lists; please try again later', true),
    );
    this.register_hook('connect', 'blocklist_connect', -90);

    this.blocklist_helo = this.shield.hook(
      'helo',
      (conn, helo: string) => {
        const st = state(this, conn);
        if (!st) return undefined;
        if (st.verdict.verdict === 'none') {
          const v = checkHelo(String(helo ?? ''), this.lists, Date.now());
          if (v.verdict === 'block') {
            // sticky: a later HELO with another name does not clear it
            st.verdict = v;
            this.shield.record(conn, clientEvidence(v));
          }
        }
        if (st.verdict.verdict !== 'block' || this.cfg.current.main.delay_reject) return undefined;
        return clientReply(this, conn, st.verdict, 'helo') ?? undefined;
      },
      () => reply(451, '4.3.0', 'Temporary failure checking the local lists; please try again later'),
    );
    this.register_hook('helo', 'blocklist_helo', -90);
    this.register_hook('ehlo', 'blocklist_helo', -90);

    this.blocklist_mail = this.shield.hook(
      'mail',
      (conn, [from]: MailParams) => {
        // (a client refused at HELO never gets here: Haraka wants an accepted HELO before MAIL)
        if (!from?.host || !from.user) return undefined; // null sender <>
        return addressCheck(this, conn, 'sender', `${from.user}@${from.host}`);
      },
      () => reply(451, '4.3.0', 'Temporary failure checking the local lists; please try again later'),
    );
    this.register_hook('mail', 'blocklist_mail', -90);

    // after shield.relay (-100): a foreign recipient is refused as a relay attempt first
    this.blocklist_rcpt = this.shield.hook(
      'rcpt',
      (conn, [rcpt]: RcptParams) => {
        const st = state(this, conn);
        if (st?.verdict.verdict === 'block' && this.cfg.current.main.delay_reject && !this.shield.suite.exemptRecipient(rcpt)) {
          const r = clientReply(this, conn, st.verdict, 'rcpt');
          if (r) return r;
        }
        if (!rcpt?.host || !rcpt.user) return undefined;
        return addressCheck(this, conn, 'rcpt', `${rcpt.user}@${rcpt.host}`);
      },
      () => reply(451, '4.3.0', 'Temporary failure checking the local lists; please try again later'),
    );
    this.register_hook('rcpt', 'blocklist_rcpt', -50);
  });
}
