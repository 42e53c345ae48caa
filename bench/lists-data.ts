/**
 * Synthetic block lists for the benchmarks: random IPv4/IPv6 hosts and ranges and random domain
 * names, none of which covers the 198.18.0.0/15 clients or the example.* names the workload uses.
 */

/** a small deterministic PRNG (mulberry32), so runs compare */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomIpv4(r: () => number): number[] {
  // first octet 11..99: public-looking and never 198.18/15
  return [11 + Math.floor(r() * 89), Math.floor(r() * 256), Math.floor(r() * 256), Math.floor(r() * 256)];
}

function cidr4(b: number[], len: number): string {
  const n = ((((b[0] as number) << 24) | ((b[1] as number) << 16) | ((b[2] as number) << 8) | (b[3] as number)) >>> 0) & (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${len}`;
}

/** `count` IP entries: 60% IPv4 hosts, 20% IPv4 ranges /16../30, 20% IPv6 /48, /64 and hosts */
export function ipEntries(count: number, seed = 1): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const k = r();
    if (k < 0.6) out.push(randomIpv4(r).join('.'));
    else if (k < 0.8) out.push(cidr4(randomIpv4(r), 16 + Math.floor(r() * 15)));
    else {
      const h = () => Math.floor(r() * 65536).toString(16);
      const len = [48, 64, 128][Math.floor(r() * 3)] as number;
      const groups = [`2a0${Math.floor(r() * 9)}`, h(), h(), len >= 64 ? h() : '0', len === 128 ? h() : '0', len === 128 ? h() : '0', len === 128 ? h() : '0', len === 128 ? h() : '0'];
      out.push(`${groups.join(':')}/${len}`);
    }
  }
  return out;
}

const SYL = ['ka', 'lo', 'mi', 'net', 'ra', 'zu', 'po', 'xe', 'vi', 'do', 'qu', 'an', 'tor', 'bel', 'sim'];
const TLDS = ['com', 'net', 'org', 'info', 'xyz', 'top', 'io', 'de', 'ru', 'cn'];

export function randomName(r: () => number, labels = 1): string {
  const label = () => Array.from({ length: 2 + Math.floor(r() * 4) }, () => SYL[Math.floor(r() * SYL.length)]).join('') + Math.floor(r() * 1000);
  return [...Array.from({ length: labels }, label), TLDS[Math.floor(r() * TLDS.length)]].join('.');
}

/** `count` domain entries (registered domains and a few host names) */
export function domainEntries(count: number, seed = 2): string[] {
  const r = rng(seed);
  const seen = new Set<string>();
  while (seen.size < count) seen.add(randomName(r, r() < 0.8 ? 1 : 2));
  return [...seen];
}
