/**
 * shield.relay: who may relay, and which domains we accept mail for. Everything else is refused
 * with 550 5.7.1 (450 4.7.1 with defer_unauth), whatever routing trick the address uses.
 *
 * Hooks: connect (marks relay clients), rcpt at priority -100 (refuses before any other recipient
 * plugin can accept), rcpt at priority 100 (accepts local recipients that no other plugin refused).
 */
import { errorMessage } from './shield/core/errors';
import { parseLines, type ConfigHandle, type SchemaOf } from './shield/core/config';
import type { HarakaAddress, HarakaPlugin } from './shield/core/haraka';
import { IpSet, cidrItem, normalizeHostname } from './shield/core/net';
import { reply, type Reply } from './shield/core/policy';
import { registerShield, setupShield, type PluginHandle } from './shield/core/suite';
import { ACCEPTED_DOMAIN, checkRelay, isLocalDomain, type RelayEvidence, type RelayPolicy } from './shield/checks/relay';
import { RELAY_SCHEMA, domainItem } from './shield/checks/relay-config';

/** for `haraka-shield config` */
export { RELAY_SCHEMA as SCHEMA } from './shield/checks/relay-config';

type RelayConfig = SchemaOf<typeof RELAY_SCHEMA>;

/** Haraka calls rcpt hooks with (next, connection, [address, params]) */
type RcptParams = [HarakaAddress, Record<string, string | null>];

interface RelayPlugin extends HarakaPlugin {
  shield: PluginHandle;
  cfg: ConfigHandle<typeof RELAY_SCHEMA>;
  policy: RelayPolicy;
  rebuildPolicy: () => void;
}

/** Read a one-entry-per-line file; a bad line is logged with file and line number and skipped. */
function readListFile(plugin: RelayPlugin, file: string, item: (s: string) => string): string[] {
  if (!file) return [];
  const handle = plugin.shield.suite.files.lines(file, plugin);
  // an edit of the file rebuilds the policy (the same listener once per file)
  handle.onChange(plugin.rebuildPolicy);
  return parseLines(handle.current, item, (n, msg) => plugin.logerror(`${file} line ${n}: ${msg}; line skipped`));
}

export function buildPolicy(plugin: RelayPlugin, cfg: RelayConfig): RelayPolicy {
  const networks = IpSet.of([...cfg.main.networks, ...readListFile(plugin, cfg.main.networks_file, cidrItem)]);
  const domains = new Set([...cfg.main.domains.map(domainItem), ...readListFile(plugin, cfg.main.domains_file, domainItem)]);
  return Object.freeze({ networks, domains, acceptSubdomains: cfg.main.accept_subdomains, authRelay: cfg.main.auth_relay });
}

/** rebuild the policy from the files; on error the previous policy stays and the error goes up (the reload is then not logged as applied) */
function rebuild(plugin: RelayPlugin): void {
  try {
    plugin.policy = buildPolicy(plugin, plugin.cfg.current);
  } catch (err) {
    throw new Error(`keeping the previous relay policy: ${errorMessage(err)}`);
  }
  plugin.loginfo(`relay networks: ${plugin.policy.networks.size}, local domains: ${plugin.policy.domains.size}`);
}

function refusal(ev: RelayEvidence, ip: string, deferUnauth: boolean): Reply {
  const domain = ev.data.domain ?? '';
  const relayDenied = (text: string): Reply => (deferUnauth ? reply(450, '4.7.1', text) : reply(550, '5.7.1', text));
  switch (ev.reason) {
    case 'sender_routing':
      return relayDenied('Relaying denied: addresses that route through us (%, ! or @ in the local part) are not accepted');
    case 'address_literal':
      return relayDenied(`Relaying denied: this server does not accept mail for the address literal ${domain}`);
    case 'unqualified':
      return reply(553, '5.1.3', 'Recipient address must be fully qualified (user@domain)');
    case 'bad_domain':
      return reply(553, '5.1.3', 'Recipient domain is not a valid domain name');
    default:
      return relayDenied(`Relaying denied: ${domain} is not a domain this server accepts mail for, and ${ip} may not relay (authenticate to send elsewhere)`);
  }
}

export function register(this: RelayPlugin): void {
  registerShield(this, () => {
    this.shield = setupShield(this, 'relay');
    this.cfg = this.shield.suite.files.ini('shield.relay.ini', RELAY_SCHEMA, this);
    this.rebuildPolicy = () => rebuild(this);
    this.policy = buildPolicy(this, this.cfg.current);
    this.cfg.onChange(this.rebuildPolicy);
    // published for the suite: which domains are ours (postmaster@ exemptions, HELO impersonation)
    const policy = (): RelayPolicy => this.policy;
    this.shield.suite.localDomains = {
      isLocal: (domain) => {
        const d = normalizeHostname(domain, ACCEPTED_DOMAIN);
        return d !== null && isLocalDomain(d, policy());
      },
      get names() {
        return policy().domains;
      },
    };

    // a relay client is decided by the session's pinned address, never by a later announcement
    this.relay_connect = this.shield.hook('connect', (conn) => {
      const s = this.shield.session(conn);
      s.relayClient = this.policy.networks.has(s.identity.ipText);
      if (s.relayClient) {
        conn.relaying = true;
        this.shield.record(conn, { check: 'relay', outcome: 'pass', reason: 'relay_network', data: { ip: s.identity.ipText } });
      }
    });
    this.register_hook('connect', 'relay_connect', -100);

    this.relay_rcpt = this.shield.hook(
      'rcpt',
      (conn, [rcpt]: RcptParams) => {
        const s = this.shield.session(conn);
        const ev = checkRelay({ clientIp: s.identity.ipText, authUser: s.authUser, rcpt }, this.policy);
        this.shield.record(conn, ev);
        if (ev.outcome === 'pass') return undefined;
        return refusal(ev, s.identity.ipText, this.cfg.current.main.defer_unauth);
      },
      // a fault while deciding must not turn into an accept: ask the sender to retry
      () => reply(451, '4.3.0', 'Temporary failure checking the recipient; please try again later'),
    );
    this.register_hook('rcpt', 'relay_rcpt', -100);

    this.relay_accept = this.shield.hook('rcpt', (conn, [rcpt]: RcptParams) => {
      if (!this.cfg.current.main.accept_local) return undefined;
      const s = this.shield.session(conn);
      const ev = checkRelay({ clientIp: s.identity.ipText, authUser: s.authUser, rcpt }, this.policy);
      return ev.outcome === 'pass' ? 'ok' : undefined;
    });
    this.register_hook('rcpt', 'relay_accept', 100);
  });
}
