/**
 * shield.rdns.ini: its schema, shared by the plugin and `haraka-shield config`, so the CLI never
 * loads the plugin.
 */
import { f } from '../core/config';
import { normalizeHostname, parseIp } from '../core/net';
import { ACTIONS, type Action } from '../core/policy';
import { DEFAULT_GENERIC_PATTERNS, compilePattern } from './rdns';

const action = (def: Action, doc: string) => f.oneOf(ACTIONS, def, doc);
const score = (def: number, what: string) => f.num(def, `score ${what} adds to the suite's sum when its action is tag (shield.ini [policy])`, { min: -100, max: 100 });

export const RDNS_SCHEMA = {
  main: {
    enforce_at: f.oneOf(['mail', 'rcpt'] as const, 'rcpt', 'stage where the verdict is given (after AUTH, so authenticated users are exempt; rcpt also puts sender and recipient in the log)'),
    exempt_ports: f.list(['587', '465'], 'local ports whose clients are exempt (submission: MUAs on laptops have no rDNS and send any HELO)', (s) => {
      if (!/^\d{1,5}$/.test(s) || Number(s) > 65535) throw new Error(`"${s}" is not a port number`);
      return s;
    }),
    exempt_private: f.bool(true, 'exempt clients from private, loopback and link-local addresses (the server\'s own networks)'),
    max_ptr_names: f.int(3, 'most PTR names followed forward for FCrDNS (a client may publish many)', { min: 1, max: 10 }),
    dns_error: f.oneOf(['defer', 'ignore'] as const, 'defer', 'what a DNS fault (timeout, SERVFAIL) in a check does: defer (4xx, the sender retries) or ignore (recorded as err, no effect); never a 5xx'),
    generic_patterns: f.list(
      [...DEFAULT_GENERIC_PATTERNS],
      'regular expressions (case-insensitive), one per "generic_patterns[] =" line, that mark a PTR name as dynamic/generic; names embedding the client address are generic anyway',
      (s) => {
        compilePattern(s);
        return s;
      },
      { whole: true },
    ),
    our_names: f.list([], 'host names that are ours besides Haraka\'s own (config/me); a client giving one of them as HELO is impersonating us', (s) => {
      const n = normalizeHostname(s, { underscore: true });
      if (!n) throw new Error(`"${s}" is not a host name`);
      return n;
    }),
    our_ips: f.list([], 'addresses that are ours besides the one the client connected to', (s) => {
      const ip = parseIp(s);
      if (!ip) throw new Error(`"${s}" is not an IP address`);
      return ip.text;
    }),
    use_relay_domains: f.bool(true, 'the local domains shield.relay publishes (when it is loaded; its reloads apply at once) count as our names'),
  },
  actions: {
    no_ptr: action('reject', 'the client address has no PTR record (550 5.7.25; large mailbox providers refuse these too)'),
    fcrdns: action('tag', 'no PTR name resolves back to the client address'),
    generic: action('tag', 'the PTR name looks dynamic or generic'),
    helo_syntax: action('reject', 'the HELO is not an FQDN under a public suffix or an address literal (RFC 5321 4.1.1.1)'),
    helo_literal: action('tag', 'a HELO address literal that is not the client address (clients behind NAT do this)'),
    helo_impersonation: action('reject', 'the HELO is our own name, one of our domains or one of our addresses'),
    helo_mismatch: action('tag', 'the HELO neither resolves to the client nor shares the registered domain of its confirmed rDNS name'),
  },
  scores: {
    no_ptr: score(3, 'a missing PTR'),
    fcrdns: score(1, 'a PTR that does not resolve back'),
    generic: score(1, 'a generic PTR name'),
    helo_syntax: score(3, 'an invalid HELO'),
    helo_literal: score(1, 'a literal of another address'),
    helo_impersonation: score(5, 'a HELO that is ours'),
    helo_mismatch: score(1, 'a HELO that does not match'),
  },
} as const;
