/**
 * shield.limit: connection and rate limits a fleet of nodes shares, counted in the store (Redis) in
 * one atomic step per SMTP stage, healing by itself after a node crash (leases expire) and falling
 * back to the node's memory while Redis is unreachable.
 *
 * Hooks: connect (concurrency per node, per client, per netblock, fleet total; connection rate and
 * daily cap), mail (MAIL commands per connection, message rates), rcpt (recipients per message, recipient rates), helo/ehlo/mail/
 * rcpt/data (protocol errors), unrecognized_command. The node slot and the leases of a connection
 * are resources of its Session, released when it closes.
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { parseLines, type ConfigHandle } from './shield/core/config';
import type { HarakaAddress, HarakaConnection, HarakaPlugin } from './shield/core/haraka';
import { normalizeHostname } from './shield/core/net';
import type { Reply } from './shield/core/policy';
import type { Evidence } from './shield/core/results';
import { registerShield, setupShield, type PluginHandle } from './shield/core/suite';
import {
  Overrides,
  clientSubject,
  connectPlan,
  countedSenderDomain,
  mailCountOver,
  parseOverrideLine,
  transactionRates,
  type Limits,
} from './shield/checks/limits';
import { LIMIT_SCHEMA } from './shield/checks/limit-config';
import { connectRefusal, nodeBusyReply, tooManyErrorsReply, tooManyMailsReply, tooManyRecipientsReply, tooManyUnrecognizedReply, transactionRefusal } from './shield/checks/limit-replies';

/** for `haraka-shield config` */
export { LIMIT_SCHEMA as SCHEMA } from './shield/checks/limit-config';

type MailParams = [HarakaAddress, Record<string, string | null>];

/** what this plugin keeps in the Session (its leases are Session resources) */
interface ConnState {
  readonly id: string;
  readonly limits: Limits;
  readonly subject: string;
  unrecognized: number;
  /** MAIL commands of this connection that reached the plugin */
  mails: number;
}
const STATE = 'limit';

interface LimitPlugin extends HarakaPlugin {
  shield: PluginHandle;
  cfg: ConfigHandle<typeof LIMIT_SCHEMA>;
  overrides: Overrides;
  reloadOverrides: () => void;
  /** connections open on this node that count against conc_node */
  nodeOpen: number;
  /** lease id -> keys, renewed every lease_refresh */
  held: Map<string, string[]>;
  timer: NodeJS.Timeout | null;
  nodeId: string;
}

function baseLimits(plugin: LimitPlugin): Limits {
  const c = plugin.cfg.current;
  return { ...c.concurrency, ...c.rates, ...c.session };
}

function readOverrides(plugin: LimitPlugin): Overrides {
  const o = new Overrides();
  const file = plugin.cfg.current.main.overrides_file;
  if (!file) return o;
  const handle = plugin.shield.suite.files.lines(file, plugin);
  // an edit of the file re-reads it (the same listener once per file)
  handle.onChange(plugin.reloadOverrides);
  for (const e of parseLines(handle.current, parseOverrideLine, (n, msg) => plugin.logerror(`${file} line ${n}: ${msg}; line skipped`))) o.add(e.cidr, e.limits);
  return o;
}

function reloadOverrides(plugin: LimitPlugin): void {
  plugin.overrides = readOverrides(plugin);
  plugin.loginfo(`limit overrides: ${plugin.overrides.size}`);
}

function leaseTtl(plugin: LimitPlugin): number {
  return plugin.cfg.current.main.lease_refresh * 2;
}

function startRefresh(plugin: LimitPlugin): void {
  if (plugin.timer) clearInterval(plugin.timer);
  plugin.timer = setInterval(() => {
    const ttl = leaseTtl(plugin);
    for (const [id, keys] of plugin.held) {
      plugin.shield.suite.store.leaseRefreshMany(keys, id, ttl).catch((err: unknown) => plugin.logerror(`lease refresh: ${String(err)}`));
    }
  }, plugin.cfg.current.main.lease_refresh * 1000);
  plugin.timer.unref();
}

function sleep(sec: number): Promise<void> {
  return sec > 0 ? new Promise((r) => setTimeout(r, sec * 1000)) : Promise.resolve();
}

/** record the refusal, apply the mode (dry run) and the tarpit, and return the reply to send */
async function refuse(plugin: LimitPlugin, conn: HarakaConnection, name: string, r: Reply): Promise<Reply | undefined> {
  const ev: Evidence = { check: 'limit', outcome: 'fail', reason: name, data: { text: r.text } };
  plugin.shield.record(conn, ev);
  const d = plugin.shield.decide(conn, ev, { fail: 'reject', err: 'ignore' }, { reject: r, defer: r });
  if (!d.reply) return undefined;
  await sleep(plugin.cfg.current.main.tarpit);
  return d.reply;
}

function authUser(plugin: LimitPlugin, conn: HarakaConnection): string | null {
  return plugin.shield.session(conn).authUser?.toLowerCase() ?? null;
}

/** per-IP limits are lifted for relay clients (exempt_relay) and allowlisted clients (exempt_allowlisted) */
function exemptClient(plugin: LimitPlugin, conn: HarakaConnection): boolean {
  const m = plugin.cfg.current.main;
  const s = plugin.shield.session(conn);
  return (m.exempt_relay && s.relayClient) || (m.exempt_allowlisted && s.allowlisted);
}

/** relay clients and authenticated users: the _relay variants of the per-message caps */
function privileged(plugin: LimitPlugin, conn: HarakaConnection): boolean {
  const session = plugin.shield.session(conn);
  return Boolean(conn.relaying) || session.authUser !== null || session.relayClient;
}

/** max_mails: count this MAIL (every one that reaches the plugin, refused ones too) and close the connection past the cap */
function mailsCheck(plugin: LimitPlugin, conn: HarakaConnection): Promise<Reply | undefined> | undefined {
  const st = plugin.shield.session(conn).peek<ConnState>(STATE);
  if (!st) return undefined;
  st.mails++;
  const over = mailCountOver(st.mails, st.limits, privileged(plugin, conn));
  return over ? refuse(plugin, conn, over, tooManyMailsReply(st.limits[over])) : undefined;
}

function errorsCheck(plugin: LimitPlugin, conn: HarakaConnection): Promise<Reply | undefined> | undefined {
  const st = plugin.shield.session(conn).peek<ConnState>(STATE);
  const max = st?.limits.max_errors ?? plugin.cfg.current.session.max_errors;
  const errors = Number((conn as unknown as { errors?: number }).errors ?? 0);
  if (max > 0 && errors >= max) {
    return refuse(plugin, conn, 'max_errors', tooManyErrorsReply(errors));
  }
  return undefined;
}

export function register(this: LimitPlugin): void {
  registerShield(this, () => {
    this.shield = setupShield(this, 'limit');
    this.cfg = this.shield.suite.files.ini('shield.limit.ini', LIMIT_SCHEMA, this);
    this.reloadOverrides = () => reloadOverrides(this);
    this.nodeOpen = 0;
    this.held = new Map();
    this.timer = null;
    this.nodeId = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.overrides = readOverrides(this);
    this.cfg.onChange(() => {
      reloadOverrides(this);
      startRefresh(this);
    });
    startRefresh(this);

    // after shield.relay (-100) and shield.blocklist (-90): relay clients and allowlisted clients are known
    this.limit_connect = this.shield.hook(
      'connect',
      async (conn) => {
        const session = this.shield.session(conn);
        if (session.closed) return undefined;
        const ip = session.identity.ip;
        const m = this.cfg.current.main;
        const limits = this.overrides.apply(baseLimits(this), ip);
        const st = session.local<ConnState>(STATE, () => ({ id: `${this.nodeId}:${session.uuid}`, limits, subject: clientSubject(ip, m.ipv6_prefix), unrecognized: 0, mails: 0 }));

        if (limits.conc_node > 0 && this.nodeOpen >= limits.conc_node) {
          return refuse(this, conn, 'conc_node', nodeBusyReply(limits.conc_node));
        }
        // the node slot is taken now (simultaneous connects cannot overshoot conc_node) and belongs to
        // the session: it comes back when the session closes, whenever that is
        this.nodeOpen++;
        const nodeSlot = session.hold(() => {
          this.nodeOpen--;
        });
        if (!nodeSlot) return undefined;
        const plan = connectPlan({ ip, limits, exemptClient: exemptClient(this, conn), ipv6Prefix: m.ipv6_prefix, netV4: m.net_prefix_v4, netV6: m.net_prefix_v6 });
        const res = await this.shield.suite.store.admit(st.id, plan.leases, leaseTtl(this), plan.rates);
        if (!res.admitted && res.refused) {
          await nodeSlot.release();
          const i = res.refused.kind === 'lease' ? res.refused.index : plan.leases.length + res.refused.index;
          const name = plan.names[i] as keyof Limits;
          return refuse(this, conn, name, connectRefusal(name, limits, st.subject, res.refused.kind, res.retryAfterMs));
        }
        const keys = plan.leases.map((l) => l.key);
        if (keys.length === 0) return undefined;
        // the leases are the session's too; granted after the client hung up, they go back at once
        const store = this.shield.suite.store;
        const lease = session.hold(async () => {
          this.held.delete(st.id);
          await store.leaseReleaseMany(keys, st.id);
        });
        if (lease) this.held.set(st.id, keys);
        return undefined;
      },
      // a fault here (the store falls back to memory by itself) must not refuse mail
      () => undefined,
    );
    this.register_hook('connect', 'limit_connect', -85);

    const txRates = async (conn: HarakaConnection, kind: 'msg' | 'rcpt', sender: HarakaAddress | null | undefined): Promise<Reply | undefined> => {
      const st = this.shield.session(conn).peek<ConnState>(STATE);
      if (!st) return undefined;
      const user = authUser(this, conn);
      const { rates, names } = transactionRates(kind, {
        limits: st.limits,
        clientSubject: st.subject,
        exemptIp: exemptClient(this, conn) || user !== null,
        // the null sender and exempt domains are not counted per domain (the domain is only claimed)
        senderDomain: countedSenderDomain(sender?.host && sender.user ? normalizeHostname(sender.host, { underscore: true }) : null, this.cfg.current.main.sender_domain_exempt),
        user,
      });
      if (!rates.length) return undefined;
      const res = await this.shield.suite.store.admit(st.id, [], 0, rates);
      if (res.admitted || !res.refused) return undefined;
      const name = names[res.refused.index] as keyof Limits;
      return refuse(this, conn, name, transactionRefusal(kind, name, st.limits, { client: st.subject, user, senderHost: sender?.host }, res.retryAfterMs));
    };

    this.limit_mail = this.shield.hook(
      'mail',
      async (conn, [from]: MailParams) => (await errorsCheck(this, conn)) ?? (await mailsCheck(this, conn)) ?? txRates(conn, 'msg', from),
      () => undefined,
    );
    this.register_hook('mail', 'limit_mail', -85);

    // after shield.relay (-100) and shield.blocklist (-50): refused recipients are not counted
    this.limit_rcpt = this.shield.hook(
      'rcpt',
      async (conn) => {
        const errors = await errorsCheck(this, conn);
        if (errors) return errors;
        const session = this.shield.session(conn);
        const st = session.peek<ConnState>(STATE);
        const txn = conn.transaction;
        if (st && txn) {
          const relay = privileged(this, conn);
          const max = relay ? st.limits.max_rcpts_relay : st.limits.max_rcpts;
          // Haraka adds the recipient to rcpt_to before the rcpt hooks run
          if (max > 0 && txn.rcpt_to.length > max) {
            return refuse(this, conn, relay ? 'max_rcpts_relay' : 'max_rcpts', tooManyRecipientsReply(max));
          }
        }
        return txRates(conn, 'rcpt', txn?.mail_from);
      },
      () => undefined,
    );
    this.register_hook('rcpt', 'limit_rcpt', -30);

    this.limit_errors = this.shield.hook('errors', (conn) => errorsCheck(this, conn), () => undefined);
    for (const h of ['helo', 'ehlo', 'data']) this.register_hook(h, 'limit_errors', -85);

    this.limit_unrecognized = this.shield.hook(
      'unrecognized_command',
      (conn) => {
        const st = this.shield.session(conn).peek<ConnState>(STATE);
        if (!st) return undefined;
        st.unrecognized++;
        const max = st.limits.max_unrecognized;
        if (max > 0 && st.unrecognized >= max) {
          return refuse(this, conn, 'max_unrecognized', tooManyUnrecognizedReply(st.unrecognized));
        }
        return undefined;
      },
      () => undefined,
    );
    this.register_hook('unrecognized_command', 'limit_unrecognized', -85);
  });
}
