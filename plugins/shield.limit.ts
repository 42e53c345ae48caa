/**
 * shield.limit: connection and rate limits a fleet of nodes shares, counted in the store (Redis) in
 * one atomic step per SMTP stage, healing by itself after a node crash (leases expire) and falling
 * back to the node's memory while Redis is unreachable.
 *
 * Hooks: connect (concurrency per node, per client, per netblock, fleet total; connection rate and
 * daily cap), mail (message rates), rcpt (recipients per message, recipient rates), helo/ehlo/mail/
 * rcpt/data (protocol errors), unrecognized_command. The node slot and the leases of a connection
 * are resources of its Session, released when it closes.
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { f, ConfigHandle, parseLines } from './shield/core/config';
import type { HarakaAddress, HarakaConnection, HarakaPlugin } from './shield/core/haraka';
import { normalizeHostname } from './shield/core/net';
import type { Reply } from './shield/core/policy';
import type { Evidence } from './shield/core/results';
import { setupShield, type PluginHandle } from './shield/core/suite';
import {
  Overrides,
  clientSubject,
  connectPlan,
  parseOverrideLine,
  transactionRates,
  type Limits,
} from './shield/checks/limits';
import { connectRefusal, nodeBusyReply, tooManyErrorsReply, tooManyRecipientsReply, tooManyUnrecognizedReply, transactionRefusal } from './shield/checks/limit-replies';

const count = (def: number, doc: string) => f.int(def, doc, { min: 0 });

export const SCHEMA = {
  main: {
    lease_refresh: f.duration(30, 'how often a node renews the leases of its open connections; a crashed node\'s leases expire after twice this', { min: 0.2, max: 3600 }),
    exempt_relay: f.bool(true, 'relay clients (shield.relay networks) are exempt from the per-IP and per-netblock limits and rates'),
    exempt_allowlisted: f.bool(false, 'clients allowlisted by shield.blocklist are exempt from the per-IP and per-netblock limits (off: an allow entry never lifts rate limits)'),
    ipv6_prefix: f.int(64, 'IPv6 clients are counted per this prefix for every per-IP limit (one host usually owns a /64)', { min: 32, max: 128 }),
    net_prefix_v4: f.int(24, 'netblock size for the per-netblock limits, IPv4', { min: 8, max: 32 }),
    net_prefix_v6: f.int(48, 'netblock size for the per-netblock limits, IPv6', { min: 16, max: 128 }),
    overrides_file: f.str('shield.limit.overrides', 'file in config/ with per-CIDR overrides: "CIDR name=value ..." per line (missing = none)'),
    tarpit: f.duration(0, 'delay before every limit reply (slows down abusive clients; keep below [hooks] budget of shield.ini)', { min: 0, max: 60 }),
  },
  concurrency: {
    conc_node: count(0, 'connections open at once in this Haraka process (0 = no limit)'),
    conc_ip: count(10, 'connections open at once from one client, across the fleet'),
    conc_net: count(0, 'connections open at once from one netblock, across the fleet'),
    conc_total: count(0, 'connections open at once across the fleet'),
  },
  rates: {
    conn_ip: f.rate({ limit: 60, windowSec: 60 }, 'new connections per client: N/window (30/1m, 500/1h) or off'),
    conn_net: f.rate(null, 'new connections per netblock'),
    daily_ip: f.rate(null, 'connections per client per day, e.g. 2000/1d (the daily cap)'),
    msg_ip: f.rate(null, 'messages (MAIL commands) per client; not for relay clients or authenticated users'),
    msg_sender_domain: f.rate(null, 'messages per envelope sender domain (the null sender is not counted)'),
    msg_user: f.rate({ limit: 200, windowSec: 3600 }, 'messages per authenticated user (a stolen password sends no flood)'),
    rcpt_ip: f.rate(null, 'recipients per client; not for relay clients or authenticated users'),
    rcpt_sender_domain: f.rate(null, 'recipients per envelope sender domain'),
    rcpt_user: f.rate({ limit: 1000, windowSec: 3600 }, 'recipients per authenticated user'),
  },
  session: {
    max_rcpts: count(100, 'recipients per message (RFC 5321 asks servers to take at least 100)'),
    max_rcpts_relay: count(1000, 'recipients per message for relay clients and authenticated users'),
    max_unrecognized: count(10, 'unrecognized commands per connection before it is closed'),
    max_errors: count(10, 'protocol errors (replies 4xx/5xx to bad commands) per connection before it is closed'),
  },
} as const;

type MailParams = [HarakaAddress, Record<string, string | null>];

/** what this plugin keeps in the Session (its leases are Session resources) */
interface ConnState {
  readonly id: string;
  readonly limits: Limits;
  readonly subject: string;
  unrecognized: number;
}
const STATE = 'limit';

interface LimitPlugin extends HarakaPlugin {
  shield: PluginHandle;
  cfg: ConfigHandle<typeof SCHEMA>;
  overrides: Overrides;
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
  const lines = (plugin.config.get(file, 'data', () => reloadOverrides(plugin)) as string[] | null) ?? [];
  for (const e of parseLines(lines, parseOverrideLine, (n, msg) => plugin.logerror(`${file} line ${n}: ${msg}; line skipped`))) o.add(e.cidr, e.limits);
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
  this.shield = setupShield(this, 'limit');
  this.cfg = new ConfigHandle(this, 'shield.limit.ini', SCHEMA);
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
      const st = session.local<ConnState>(STATE, () => ({ id: `${this.nodeId}:${session.uuid}`, limits, subject: clientSubject(ip, m.ipv6_prefix), unrecognized: 0 }));

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
      senderDomain: sender?.host && sender.user ? normalizeHostname(sender.host, { underscore: true }) : null,
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
    async (conn, [from]: MailParams) => (await errorsCheck(this, conn)) ?? txRates(conn, 'msg', from),
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
        const privileged = conn.relaying || session.authUser !== null || session.relayClient;
        const max = privileged ? st.limits.max_rcpts_relay : st.limits.max_rcpts;
        // Haraka adds the recipient to rcpt_to before the rcpt hooks run
        if (max > 0 && txn.rcpt_to.length > max) {
          return refuse(this, conn, privileged ? 'max_rcpts_relay' : 'max_rcpts', tooManyRecipientsReply(max));
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
}
