/**
 * Relay control: may this client hand us this recipient? Pure: no Haraka objects, no I/O.
 *
 * A client may relay (send to any domain) when its IP is in a relay network or it has authenticated
 * (and auth_relay is on). Anyone else may only send to recipients in our accepted domains, and the
 * address must name its destination plainly. Each routing trick is handled the way a careful MTA does:
 *
 * | trick                                   | handling                                                    |
 * |-----------------------------------------|-------------------------------------------------------------|
 * | percent hack  user%other@local          | refused (sender_routing): never rewritten or forwarded      |
 * | bang path     other!user@local          | refused (sender_routing)                                    |
 * | quoted "user@other"@local, "a%b", "a!b" | refused (sender_routing): quoting does not hide routing     |
 * | source route  <@local:user@other>       | normalised: the route is dropped (RFC 5321 §3.6.1, App. C)  |
 * |                                         | and the final address is judged, so other -> refused        |
 * | IP literal    user@[192.0.2.1]          | refused (address_literal) unless listed in domains as [ip]  |
 * | case, trailing dot  USER@Local.Example. | normalised: domains compare lower-case, one final dot off   |
 * | IDN  user@bücher.example                | normalised to the A-label (xn--bcher-kva.example) on both   |
 * |                                         | sides, so U-label and punycode are the same domain          |
 * | unqualified  <user>                     | refused (unqualified), except <postmaster> (RFC 5321 §4.1.1.3) |
 */
import type { IpSet } from '../core/net';
import { normalizeHostname } from '../core/net';
import type { Evidence } from '../core/results';

export interface RelayPolicy {
  readonly networks: IpSet<true>;
  /** normalised accepted domains (A-labels, lower case, "[ip]" for literals) */
  readonly domains: ReadonlySet<string>;
  readonly acceptSubdomains: boolean;
  readonly authRelay: boolean;
}

export interface RelayInput {
  readonly clientIp: string;
  /** the authenticated user name, or null */
  readonly authUser: string | null;
  readonly rcpt: { readonly user: string | null; readonly host: string | null; readonly original: string };
}

export type RelayReason =
  | 'relay_network'
  | 'authenticated'
  | 'local_domain'
  | 'postmaster'
  | 'not_local'
  | 'sender_routing'
  | 'address_literal'
  | 'unqualified'
  | 'bad_domain';

export interface RelayEvidence extends Evidence {
  readonly check: 'relay';
  readonly reason: RelayReason;
  readonly data: { readonly rcpt: string; readonly domain: string | null; readonly sourceRoute: boolean };
}

/**
 * How relay reads a domain (normalizeHostname): lower case, no trailing dot, A-label, letters, digits
 * and hyphens only (no underscore); address literals as "[canonical ip]".
 */
export const ACCEPTED_DOMAIN = { addressLiteral: true } as const;

/** Is the client allowed to relay at all (before looking at a recipient)? */
export function relayClientReason(clientIp: string, authUser: string | null, policy: RelayPolicy): 'relay_network' | 'authenticated' | null {
  if (policy.networks.has(clientIp)) return 'relay_network';
  if (authUser && policy.authRelay) return 'authenticated';
  return null;
}

export function isLocalDomain(domain: string, policy: Pick<RelayPolicy, 'domains' | 'acceptSubdomains'>): boolean {
  if (policy.domains.has(domain)) return true;
  if (!policy.acceptSubdomains || domain.startsWith('[')) return false;
  for (let i = domain.indexOf('.'); i !== -1; i = domain.indexOf('.', i + 1)) {
    if (policy.domains.has(domain.slice(i + 1))) return true;
  }
  return false;
}

export function checkRelay(input: RelayInput, policy: RelayPolicy): RelayEvidence {
  const { rcpt } = input;
  const sourceRoute = /^<?\s*@/.test(rcpt.original.trim());
  const rcptText = `${rcpt.user ?? ''}${rcpt.host ? `@${rcpt.host}` : ''}`;
  const ev = (outcome: 'pass' | 'fail', reason: RelayReason, domain: string | null): RelayEvidence => ({
    check: 'relay',
    outcome,
    reason,
    data: { rcpt: rcptText, domain, sourceRoute },
  });

  const client = relayClientReason(input.clientIp, input.authUser, policy);
  if (client) return ev('pass', client, rcpt.host ? normalizeHostname(rcpt.host, ACCEPTED_DOMAIN) : null);

  if (!rcpt.host) {
    return (rcpt.user ?? '').toLowerCase() === 'postmaster' ? ev('pass', 'postmaster', null) : ev('fail', 'unqualified', null);
  }
  // %, ! and @ in the local part (quoted or not) ask us to route the mail onwards
  if (/[%!@]/.test(rcpt.user ?? '')) return ev('fail', 'sender_routing', normalizeHostname(rcpt.host, ACCEPTED_DOMAIN));

  const domain = normalizeHostname(rcpt.host, ACCEPTED_DOMAIN);
  if (!domain) return ev('fail', 'bad_domain', null);
  if (isLocalDomain(domain, policy)) return ev('pass', 'local_domain', domain);
  if (domain.startsWith('[')) return ev('fail', 'address_literal', domain);
  return ev('fail', 'not_local', domain);
}
