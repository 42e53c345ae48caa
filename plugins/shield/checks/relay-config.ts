/**
 * shield.relay.ini: its schema, shared by the plugin and `haraka-shield config`, so the CLI never
 * loads the plugin.
 */
import { f } from '../core/config';
import { cidrItem, normalizeHostname } from '../core/net';
import { ACCEPTED_DOMAIN } from './relay';

/** one local domain, as the ini and the domains file give it: normalised (A-labels, no final dot) */
export function domainItem(s: string): string {
  const d = normalizeHostname(s, ACCEPTED_DOMAIN);
  if (!d) throw new Error(`"${s}" is not a domain name`);
  return d;
}

export const RELAY_SCHEMA = {
  main: {
    networks: f.list([], 'relay networks: IPv4/IPv6 CIDRs or single addresses (a bare IP is one host); clients here may send to any domain', cidrItem),
    networks_file: f.file('shield.relay.networks', 'file in config/ with more relay networks, one per line, # comments (missing file = none)'),
    domains: f.list([], 'domains we accept mail for (local domains); IDN in either form; [192.0.2.1] for an address literal', (s) => {
      if (!normalizeHostname(s, ACCEPTED_DOMAIN)) throw new Error(`"${s}" is not a domain name`);
      return s;
    }),
    domains_file: f.file('shield.relay.domains', 'file in config/ with more local domains, one per line, # comments (missing file = none)'),
    accept_subdomains: f.bool(false, 'also accept mail for every subdomain of a local domain'),
    auth_relay: f.bool(true, 'authenticated users may relay to any domain'),
    accept_local: f.bool(true, 'accept recipients in local domains once no other rcpt plugin refused them; false leaves acceptance to another plugin'),
    defer_unauth: f.bool(false, 'answer relay refusals with 450 4.7.1 instead of 550 5.7.1 (while testing a new config)'),
  },
} as const;
