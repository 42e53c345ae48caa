/** DNS list zones for the shield.dnsbl tests: the ini and the fixture data (integration and cluster). */
import type { ZoneEntry } from './dns-server';

export const DNSBL_INI = `[main]
zones = bl, wl, blocked, slow, dbl, tag, everything
threshold = 1
health_interval = 1s

[bl]
zone = bl.example.net
ipv6 = true
listed[] = 127.0.0.2 spam 1
listed[] = 127.0.0.3 botnet 1
lookup_url = https://lookup.example.net/?{item}

[wl]
type = allow
zone = wl.example.net
weight = 2
test_listed =
test_unlisted =

[blocked]
zone = blocked.example.net
test_listed =
test_unlisted =

[slow]
zone = slow.example.net
test_listed =
test_unlisted =

[dbl]
type = domain
zone = dbl.example.net
listed[] = 127.0.1.2 dbl 1
test_listed =
test_unlisted =

[tag]
zone = tag.example.net
tag_only = true
test_listed =
test_unlisted =

[everything]
zone = everything.example.net
`;

/** the zone data: which client is listed where */
export function dnsblZones(): Record<string, ZoneEntry> {
  return {
    // bl: test points and listings
    '2.0.0.127.bl.example.net': { A: ['127.0.0.2'] },
    '2.60.18.198.bl.example.net': { A: ['127.0.0.2'], ttl: 300 },
    '3.60.18.198.bl.example.net': { A: ['127.0.0.2'] },
    '9.60.18.198.bl.example.net': { A: ['127.0.0.3'] },
    '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.0.0.0.0.0.0.0.2.0.0.0.1.0.0.2.bl.example.net': { A: ['127.0.0.2'] },
    '3.60.18.198.wl.example.net': { A: ['127.0.0.2'] },
    // a resolver Spamhaus refuses: 127.255.255.254 for everything
    '4.60.18.198.blocked.example.net': { A: ['127.255.255.254'] },
    '6.60.18.198.blocked.example.net': { A: ['127.255.255.254'] },
    // the other codes that are never listings, on this zone without listed[] patterns
    '10.60.18.198.blocked.example.net': { A: ['127.0.0.1'] },
    '11.60.18.198.blocked.example.net': { A: ['127.255.255.255'] },
    '12.60.18.198.blocked.example.net': { A: ['192.0.2.1'] },
    '13.60.18.198.blocked.example.net': { A: ['127.255.255.0'] },
    // a dead zone
    ...Object.fromEntries(['4', '5', '6', '7', '8'].map((o) => [`${o}.60.18.198.slow.example.net`, { drop: true } as ZoneEntry])),
    // registered domains: what a DBL-style zone is asked about
    'example.net.dbl.example.net': { A: ['127.0.1.2'] },
    '7.60.18.198.tag.example.net': { A: ['127.0.0.2'] },
    // a zone that lists everything, its "never listed" test point included
    '1.0.0.127.everything.example.net': { A: ['127.0.0.2'] },
    '2.0.0.127.everything.example.net': { A: ['127.0.0.2'] },
    '8.60.18.198.everything.example.net': { A: ['127.0.0.2'] },
  };
}

