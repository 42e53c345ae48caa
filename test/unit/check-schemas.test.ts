/**
 * The schemas of the checks' ini files: the defaults an empty file gives (the ones config/*.ini and
 * docs/shield.*.md document), the bounds of each number, the item checks of the lists, and a
 * description for every key (what `haraka-shield config` shows).
 */
import assert from 'node:assert/strict';
import { BLOCKLIST_SCHEMA } from '../../plugins/shield/checks/blocklist-config';
import { LIMIT_SCHEMA } from '../../plugins/shield/checks/limit-config';
import { RDNS_SCHEMA } from '../../plugins/shield/checks/rdns-config';
import { DEFAULT_GENERIC_PATTERNS } from '../../plugins/shield/checks/rdns';
import { RELAY_SCHEMA } from '../../plugins/shield/checks/relay-config';
import { DNSBL_SCHEMA } from '../../plugins/shield/checks/dnsbl-config';
import { describeSchema, parseConfig, type Schema } from '../../plugins/shield/core/config';

type Raw = Record<string, Record<string, string | string[]>>;

function accepts(schema: Schema, section: string, key: string, value: string | string[]): unknown {
  return (parseConfig('t.ini', schema, { [section]: { [key]: value } } as Raw) as Record<string, Record<string, unknown>>)[section]?.[key];
}

function refuses(schema: Schema, section: string, key: string, value: string | string[], why: RegExp): void {
  assert.throws(() => parseConfig('t.ini', schema, { [section]: { [key]: value } } as Raw), why, `${section}.${key} = ${String(value)}`);
}

describe('check schemas: every key is described', () => {
  for (const [file, schema] of [
    ['shield.blocklist.ini', BLOCKLIST_SCHEMA],
    ['shield.dnsbl.ini', DNSBL_SCHEMA],
    ['shield.limit.ini', LIMIT_SCHEMA],
    ['shield.rdns.ini', RDNS_SCHEMA],
    ['shield.relay.ini', RELAY_SCHEMA],
  ] as const) {
    it(file, () => {
      for (const row of describeSchema(schema as unknown as Schema)) {
        assert.ok(row.doc.trim().length > 10, `${file} [${row.section}] ${row.key} has no description`);
        if (row.kind === 'retired') assert.match(row.doc, /^retired: \S/, `${row.key}: a retired key says where it went`);
      }
    });
  }

  it('shield.rdns.ini [scores]: each says what it scores', () => {
    const rows = describeSchema(RDNS_SCHEMA as unknown as Schema).filter((r) => r.section === 'scores');
    assert.equal(rows.length, 7);
    for (const r of rows) assert.match(r.doc, /^score an? [a-zA-Z]+.* adds to the suite's sum when its action is tag \(shield\.ini \[policy\]\)$/, r.key);
    assert.equal(rows.find((r) => r.key === 'helo_impersonation')?.doc, "score a HELO that is ours adds to the suite's sum when its action is tag (shield.ini [policy])");
  });
});

describe('check schemas: shield.limit.ini', () => {
  it('an empty file gives the documented defaults', () => {
    assert.deepEqual(parseConfig('shield.limit.ini', LIMIT_SCHEMA, {}), {
      main: {
        lease_refresh: 30,
        exempt_relay: true,
        exempt_allowlisted: false,
        ipv6_prefix: 64,
        net_prefix_v4: 24,
        net_prefix_v6: 48,
        overrides_file: 'shield.limit.overrides',
        tarpit: 0,
        sender_domain_exempt: [],
      },
      concurrency: { conc_node: 0, conc_ip: 10, conc_net: 0, conc_total: 0 },
      rates: {
        conn_ip: { limit: 60, windowSec: 60 },
        conn_net: null,
        daily_ip: null,
        msg_ip: null,
        msg_sender_domain: null,
        msg_user: { limit: 200, windowSec: 3600 },
        rcpt_ip: null,
        rcpt_sender_domain: null,
        rcpt_user: { limit: 1000, windowSec: 3600 },
      },
      session: { max_rcpts: 100, max_rcpts_relay: 1000, max_mails: 50, max_mails_relay: 500, max_unrecognized: 10, max_errors: 10 },
    });
  });

  it('bounds: lease_refresh 0.2 s..1 h, prefixes, tarpit 0..60 s, counts from 0', () => {
    const S = LIMIT_SCHEMA as unknown as Schema;
    assert.equal(accepts(S, 'main', 'lease_refresh', '200ms'), 0.2);
    assert.equal(accepts(S, 'main', 'lease_refresh', '1h'), 3600);
    refuses(S, 'main', 'lease_refresh', '100ms', /below the minimum 0.2s/);
    refuses(S, 'main', 'lease_refresh', '3601s', /above the maximum 3600s/);
    assert.equal(accepts(S, 'main', 'ipv6_prefix', '32'), 32);
    assert.equal(accepts(S, 'main', 'ipv6_prefix', '128'), 128);
    refuses(S, 'main', 'ipv6_prefix', '31', /ipv6_prefix/);
    refuses(S, 'main', 'ipv6_prefix', '129', /ipv6_prefix/);
    assert.equal(accepts(S, 'main', 'net_prefix_v4', '8'), 8);
    assert.equal(accepts(S, 'main', 'net_prefix_v4', '32'), 32);
    refuses(S, 'main', 'net_prefix_v4', '7', /net_prefix_v4/);
    refuses(S, 'main', 'net_prefix_v4', '33', /net_prefix_v4/);
    assert.equal(accepts(S, 'main', 'net_prefix_v6', '16'), 16);
    assert.equal(accepts(S, 'main', 'net_prefix_v6', '128'), 128);
    refuses(S, 'main', 'net_prefix_v6', '15', /net_prefix_v6/);
    refuses(S, 'main', 'net_prefix_v6', '129', /net_prefix_v6/);
    assert.equal(accepts(S, 'main', 'tarpit', '60s'), 60);
    refuses(S, 'main', 'tarpit', '61s', /above the maximum 60s/);
    for (const key of ['conc_node', 'conc_ip', 'conc_net', 'conc_total']) {
      assert.equal(accepts(S, 'concurrency', key, '0'), 0);
      refuses(S, 'concurrency', key, '-1', new RegExp(key));
    }
    for (const key of ['max_rcpts', 'max_rcpts_relay', 'max_unrecognized', 'max_errors']) {
      assert.equal(accepts(S, 'session', key, '0'), 0);
      refuses(S, 'session', key, '-1', new RegExp(key));
    }
  });
});

describe('check schemas: shield.blocklist.ini', () => {
  it('an empty file gives the documented defaults', () => {
    assert.deepEqual(parseConfig('shield.blocklist.ini', BLOCKLIST_SCHEMA, {}), {
      main: {
        block_file: 'shield.blocklist.block',
        allow_file: 'shield.blocklist.allow',
        delay_reject_exempt: undefined,
        delay_reject: false,
        show_reason: false,
        contact: '',
        sync_interval: 1,
        max_rdns_names: 5,
      },
    });
  });

  it('bounds: sync_interval 0.1 s..5 min, max_rdns_names 1..20; a retired key warns where it went', () => {
    const S = BLOCKLIST_SCHEMA as unknown as Schema;
    assert.equal(accepts(S, 'main', 'sync_interval', '100ms'), 0.1);
    assert.equal(accepts(S, 'main', 'sync_interval', '5m'), 300);
    refuses(S, 'main', 'sync_interval', '50ms', /below the minimum 0.1s/);
    refuses(S, 'main', 'sync_interval', '301s', /above the maximum 300s/);
    assert.equal(accepts(S, 'main', 'max_rdns_names', '1'), 1);
    assert.equal(accepts(S, 'main', 'max_rdns_names', '20'), 20);
    refuses(S, 'main', 'max_rdns_names', '0', /max_rdns_names/);
    refuses(S, 'main', 'max_rdns_names', '21', /max_rdns_names/);
    const warnings: string[] = [];
    parseConfig('shield.blocklist.ini', BLOCKLIST_SCHEMA, { main: { delay_reject_exempt: 'postmaster' } }, (m) => warnings.push(m));
    assert.deepEqual(warnings, ['shield.blocklist.ini [main] delay_reject_exempt: ignored; retired: the exempt recipients of every check are shield.ini [main] exempt_rcpts']);
  });
});

describe('check schemas: shield.relay.ini', () => {
  it('an empty file gives the documented defaults', () => {
    assert.deepEqual(parseConfig('shield.relay.ini', RELAY_SCHEMA, {}), {
      main: {
        networks: [],
        networks_file: 'shield.relay.networks',
        domains: [],
        domains_file: 'shield.relay.domains',
        accept_subdomains: false,
        auth_relay: true,
        accept_local: true,
        defer_unauth: false,
      },
    });
  });

  it('networks are CIDRs (a bare address is one host); domains are domain names or address literals', () => {
    const S = RELAY_SCHEMA as unknown as Schema;
    assert.deepEqual(accepts(S, 'main', 'networks', '192.0.2.0/24, 198.51.100.7 2001:db8::/32'), ['192.0.2.0/24', '198.51.100.7/32', '2001:db8::/32']);
    refuses(S, 'main', 'networks', '192.0.2.0/33', /networks/);
    assert.deepEqual(accepts(S, 'main', 'domains', 'example.com, [192.0.2.1]'), ['example.com', '[192.0.2.1]']);
    refuses(S, 'main', 'domains', 'not..a.domain', /"not\.\.a\.domain" is not a domain name/);
  });
});

describe('check schemas: shield.rdns.ini', () => {
  it('an empty file gives the documented defaults', () => {
    assert.deepEqual(parseConfig('shield.rdns.ini', RDNS_SCHEMA, {}), {
      main: {
        enforce_at: 'rcpt',
        exempt_ports: ['587', '465'],
        exempt_private: true,
        max_ptr_names: 3,
        dns_error: 'defer',
        generic_patterns: [...DEFAULT_GENERIC_PATTERNS],
        our_names: [],
        our_ips: [],
        use_relay_domains: true,
      },
      actions: {
        no_ptr: 'reject',
        fcrdns: 'tag',
        generic: 'tag',
        helo_syntax: 'reject',
        helo_literal: 'tag',
        helo_impersonation: 'reject',
        helo_mismatch: 'tag',
      },
      scores: { no_ptr: 3, fcrdns: 1, generic: 1, helo_syntax: 3, helo_literal: 1, helo_impersonation: 5, helo_mismatch: 1 },
    });
  });

  it('checks each list item: ports, patterns, names, addresses', () => {
    const S = RDNS_SCHEMA as unknown as Schema;
    assert.deepEqual(accepts(S, 'main', 'exempt_ports', '25 587 65535'), ['25', '587', '65535']);
    refuses(S, 'main', 'exempt_ports', '65536', /"65536" is not a port number/);
    refuses(S, 'main', 'exempt_ports', '123456', /"123456" is not a port number/);
    refuses(S, 'main', 'exempt_ports', 'smtp', /"smtp" is not a port number/);
    refuses(S, 'main', 'exempt_ports', '25x', /"25x" is not a port number/);
    assert.deepEqual(accepts(S, 'main', 'generic_patterns', ['^dyn[0-9]+\\.', '(pool|dhcp), more']), ['^dyn[0-9]+\\.', '(pool|dhcp), more'], 'one whole line per pattern');
    refuses(S, 'main', 'generic_patterns', ['(unclosed'], /"\(unclosed" is not a valid regular expression/);
    assert.deepEqual(accepts(S, 'main', 'our_names', 'MX1.Example.COM. mail_out.example.com'), ['mx1.example.com', 'mail_out.example.com']);
    refuses(S, 'main', 'our_names', 'bad..name', /"bad\.\.name" is not a host name/);
    assert.deepEqual(accepts(S, 'main', 'our_ips', '192.0.2.1 2001:DB8:0::1 ::ffff:198.51.100.7'), ['192.0.2.1', '2001:db8::1', '198.51.100.7']);
    refuses(S, 'main', 'our_ips', '192.0.2.300', /"192\.0\.2\.300" is not an IP address/);
    assert.equal(accepts(S, 'main', 'max_ptr_names', '1'), 1);
    assert.equal(accepts(S, 'main', 'max_ptr_names', '10'), 10);
    refuses(S, 'main', 'max_ptr_names', '0', /max_ptr_names/);
    refuses(S, 'main', 'max_ptr_names', '11', /max_ptr_names/);
    assert.equal(accepts(S, 'scores', 'no_ptr', '-100'), -100);
    assert.equal(accepts(S, 'scores', 'no_ptr', '100'), 100);
    refuses(S, 'scores', 'no_ptr', '-101', /no_ptr/);
    refuses(S, 'scores', 'no_ptr', '101', /no_ptr/);
    assert.equal(accepts(S, 'actions', 'fcrdns', 'defer'), 'defer');
    refuses(S, 'actions', 'fcrdns', 'drop', /not one of reject, defer, tag, ignore/);
    refuses(S, 'main', 'dns_error', 'reject', /not one of defer, ignore/);
  });
});
