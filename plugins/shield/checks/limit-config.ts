/**
 * shield.limit.ini: its schema, shared by the plugin and `haraka-shield config`, so the CLI never
 * loads the plugin.
 */
import { f } from '../core/config';
import { normalizeHostname } from '../core/net';

/** a count where 0 (or off) means no limit */
const count = (def: number, doc: string) => f.int(def, doc, { min: 0, off: true });

export const LIMIT_SCHEMA = {
  main: {
    lease_refresh: f.duration(30, 'how often a node renews the leases of its open connections; a crashed node\'s leases expire after twice this', { min: 0.2, max: 3600 }),
    exempt_relay: f.bool(true, 'relay clients (shield.relay networks) are exempt from the per-IP and per-netblock limits and rates'),
    exempt_allowlisted: f.bool(false, 'clients allowlisted by shield.blocklist are exempt from the per-IP and per-netblock limits (off: an allow entry never lifts rate limits)'),
    ipv6_prefix: f.int(64, 'IPv6 clients are counted per this prefix for every per-IP limit (one host usually owns a /64)', { min: 32, max: 128 }),
    net_prefix_v4: f.int(24, 'netblock size for the per-netblock limits, IPv4', { min: 8, max: 32 }),
    net_prefix_v6: f.int(48, 'netblock size for the per-netblock limits, IPv6', { min: 16, max: 128 }),
    overrides_file: f.file('shield.limit.overrides', 'file in config/ with per-CIDR overrides: "CIDR name=value ..." per line (missing = none)'),
    sender_domain_exempt: f.list(
      [],
      'envelope sender domains (and their subdomains) that msg_sender_domain and rcpt_sender_domain never count, e.g. "gmail.com, outlook.com": the domain is the client\'s unverified claim, so a forger could otherwise throttle a big provider\'s domain for the whole fleet',
      (s) => {
        const n = normalizeHostname(s, { underscore: true });
        if (!n || !n.includes('.')) throw new Error(`"${s}" is not a domain name`);
        return n;
      },
    ),
    tarpit: f.duration(0, 'delay before every limit reply (slows down abusive clients; keep below [hooks] budget of shield.ini); 0 or off = none', { min: 0, max: 60, off: true }),
  },
  concurrency: {
    conc_node: count(0, 'connections open at once in this Haraka process (0 or off = no limit)'),
    conc_ip: count(10, 'connections open at once from one client, across the fleet'),
    conc_net: count(0, 'connections open at once from one netblock, across the fleet'),
    conc_total: count(0, 'connections open at once across the fleet'),
  },
  rates: {
    conn_ip: f.rate({ limit: 60, windowSec: 60 }, 'new connections per client: N/window (30/1m, 500/1h) or off'),
    conn_net: f.rate(null, 'new connections per netblock'),
    daily_ip: f.rate(null, 'connections per client per day, e.g. 2000/1d (the daily cap)'),
    msg_ip: f.rate(null, 'messages (MAIL commands) per client; not for relay clients or authenticated users'),
    msg_sender_domain: f.rate(
      null,
      'messages per envelope sender domain as the client claims it (unverified: a forger can use up a real domain\'s allowance for the whole fleet; leave off until shield.spf exists, then it counts SPF/DKIM-authenticated domains only); the null sender and [main] sender_domain_exempt are not counted',
    ),
    msg_user: f.rate({ limit: 200, windowSec: 3600 }, 'messages per authenticated user (a stolen password sends no flood)'),
    rcpt_ip: f.rate(null, 'recipients per client; not for relay clients or authenticated users'),
    rcpt_sender_domain: f.rate(null, 'recipients per envelope sender domain as the client claims it (unverified, like msg_sender_domain: leave off until shield.spf exists)'),
    rcpt_user: f.rate({ limit: 1000, windowSec: 3600 }, 'recipients per authenticated user'),
  },
  session: {
    max_rcpts: count(100, 'recipients per message (RFC 5321 asks servers to take at least 100)'),
    max_rcpts_relay: count(1000, 'recipients per message for relay clients and authenticated users'),
    max_mails: count(50, 'MAIL commands (transactions) per connection; the next one is answered 421 4.7.0 and the connection closed (the client reconnects for the rest)'),
    max_mails_relay: count(500, 'MAIL commands per connection for relay clients and authenticated users'),
    max_unrecognized: count(10, 'unrecognized commands per connection before it is closed'),
    max_errors: count(10, 'protocol errors (replies 4xx/5xx to bad commands) per connection before it is closed'),
  },
} as const;
