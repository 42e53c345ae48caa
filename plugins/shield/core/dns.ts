/**
 * The suite's DNS resolver. Every plugin resolves through it, never through Node's default resolver,
 * so nameservers, timeout and tries come from config/shield.ini [dns] and tests can point the whole
 * suite at a fixture server.
 *
 * - Speaks DNS itself (dns-packet over UDP, TCP when the answer is truncated) because Node's resolver
 *   hides TTLs for most types and the SOA that sets negative-caching time.
 * - Answers are cached for their TTL (RFC 2308 for negative answers: the SOA's TTL or MINIMUM,
 *   whichever is lower), clamped to configured bounds; identical concurrent queries share one packet.
 * - Outcomes are classified: `ok`, `nxdomain` and `nodata` are answers; timeout, SERVFAIL, REFUSED,
 *   FORMERR and socket errors throw DnsError and are never cached, so an error is never mistaken for
 *   "not listed".
 */
import dgram from 'node:dgram';
import { getServers } from 'node:dns';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import * as packet from 'dns-packet';
import { DnsError } from './errors';
import { normalizeHostname, parseIp, type ParsedIp } from './net';
import type { Clock } from './store';
import { systemClock } from './store';

export interface MxRecord {
  readonly exchange: string;
  readonly priority: number;
}
export interface SoaRecord {
  readonly mname: string;
  readonly rname: string;
  readonly minimum: number;
}
export interface RecordMap {
  A: string;
  AAAA: string;
  PTR: string;
  CNAME: string;
  NS: string;
  MX: MxRecord;
  /** the character-strings of one TXT record, joined */
  TXT: string;
  SOA: SoaRecord;
}
export type RRType = keyof RecordMap;

export interface DnsAnswer<T extends RRType = RRType> {
  readonly name: string;
  readonly type: T;
  readonly status: 'ok' | 'nxdomain' | 'nodata';
  readonly records: readonly RecordMap[T][];
  /** seconds this answer stays cached (as served, clamped) */
  readonly ttl: number;
  readonly fromCache: boolean;
}

export interface ResolverOptions {
  /** "ip" or "ip:port" or "[ipv6]:port"; empty = the system's nameservers */
  readonly nameservers: readonly string[];
  readonly timeoutMs: number;
  /** attempts in all, rotating through the nameservers */
  readonly tries: number;
  readonly cacheSize: number;
  readonly minTtl: number;
  readonly maxTtl: number;
  /** TTL for negative answers that come without an SOA */
  readonly negativeTtl: number;
  readonly now?: Clock;
}

interface Server {
  host: string;
  port: number;
}

export function parseNameserver(text: string): Server {
  const t = text.trim();
  let m = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (m) return checkServer(m[1] as string, m[2], text);
  m = /^([^:]+):(\d+)$/.exec(t);
  if (m) return checkServer(m[1] as string, m[2], text);
  return checkServer(t, undefined, text);
}

function checkServer(host: string, port: string | undefined, text: string): Server {
  if (!parseIp(host)) throw new Error(`"${text}" is not a nameserver address (ip, ip:port or [ipv6]:port)`);
  const p = port === undefined ? 53 : Number(port);
  if (!(p > 0 && p < 65536)) throw new Error(`"${text}": bad port`);
  return { host, port: p };
}

/** in-addr.arpa / ip6.arpa name of an address; IPv4-mapped IPv6 is treated as IPv4 */
export function reverseName(ip: string): string {
  const p = parseIp(ip);
  if (!p) throw new Error(`not an IP address: ${ip}`);
  if (p.family === 4) return `${[...p.bytes].reverse().join('.')}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (const b of p.bytes) nibbles.push((b >> 4).toString(16), (b & 15).toString(16));
  return `${nibbles.reverse().join('.')}.ip6.arpa`;
}

type Raw = packet.DecodedPacket & { rcode?: string };

export class Resolver {
  private readonly cache = new Map<string, { answer: DnsAnswer; expiresAt: number }>();
  private readonly inflight = new Map<string, Promise<DnsAnswer>>();
  private readonly servers: Server[];
  private readonly now: Clock;
  private next = 0;

  constructor(readonly opts: ResolverOptions) {
    const list = opts.nameservers.length ? opts.nameservers : getServers();
    this.servers = list.map(parseNameserver);
    if (this.servers.length === 0) throw new Error('no nameservers configured and none found in the system configuration');
    this.now = opts.now ?? systemClock;
  }

  /** resolve one name and type; throws DnsError on timeout or server failure */
  query<T extends RRType>(name: string, type: T): Promise<DnsAnswer<T>> {
    const qname = normalizeHostname(name, { validate: false });
    const key = `${type} ${qname}`;
    const hit = this.cache.get(key);
    if (hit) {
      const t = this.now();
      if (hit.expiresAt > t) {
        // refresh LRU position
        this.cache.delete(key);
        this.cache.set(key, hit);
        return Promise.resolve({ ...(hit.answer as DnsAnswer<T>), ttl: Math.ceil((hit.expiresAt - t) / 1000), fromCache: true });
      }
      this.cache.delete(key);
    }
    const pending = this.inflight.get(key);
    if (pending) return pending as Promise<DnsAnswer<T>>;
    const p = this.lookup(qname, type).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  /**
   * Does `name` resolve (A for IPv4, AAAA for IPv6) to `ip`? The forward half of FCrDNS, shared by
   * every check that trusts a host name. Throws DnsError on a DNS fault.
   */
  async forwardConfirms(name: string, ip: ParsedIp): Promise<boolean> {
    const ans = await this.query(name, ip.family === 4 ? 'A' : 'AAAA');
    return ans.records.some((r) => parseIp(r)?.text === ip.text);
  }

  /** PTR names of an address */
  reverse(ip: string): Promise<DnsAnswer<'PTR'>> {
    return this.query(reverseName(ip), 'PTR');
  }

  private store<T extends RRType>(key: string, answer: DnsAnswer<T>): void {
    if (answer.ttl <= 0 || this.opts.cacheSize <= 0) return;
    if (this.cache.size >= this.opts.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, { answer, expiresAt: this.now() + answer.ttl * 1000 });
  }

  private clampTtl(ttl: number): number {
    return Math.max(this.opts.minTtl, Math.min(this.opts.maxTtl, ttl));
  }

  private async lookup<T extends RRType>(qname: string, type: T): Promise<DnsAnswer<T>> {
    let lastErr: DnsError | null = null;
    const attempts = Math.max(1, this.opts.tries);
    for (let i = 0; i < attempts; i++) {
      const server = this.servers[this.next++ % this.servers.length] as Server;
      try {
        const res = await this.exchange(server, qname, type);
        const answer = this.interpret(res, qname, type);
        this.store(`${type} ${qname}`, answer);
        return answer;
      } catch (err) {
        if (!(err instanceof DnsError)) throw err;
        lastErr = err;
        // a malformed question will not get better elsewhere
        if (err.code === 'DNS_FORMAT') break;
      }
    }
    throw lastErr ?? new DnsError('DNS_TIMEOUT', qname, type);
  }

  private interpret<T extends RRType>(res: Raw, qname: string, type: T): DnsAnswer<T> {
    const rcode = res.rcode ?? 'NOERROR';
    if (rcode === 'SERVFAIL') throw new DnsError('DNS_SERVFAIL', qname, type, 'SERVFAIL');
    if (rcode === 'REFUSED') throw new DnsError('DNS_REFUSED', qname, type, 'REFUSED');
    if (rcode === 'FORMERR' || rcode === 'NOTIMP') throw new DnsError('DNS_FORMAT', qname, type, rcode);
    if (rcode !== 'NOERROR' && rcode !== 'NXDOMAIN') throw new DnsError('DNS_SERVFAIL', qname, type, rcode);

    const answers = (res.answers ?? []) as packet.Answer[];
    const records: RecordMap[T][] = [];
    let minTtl = Infinity;
    for (const rr of answers) {
      if (rr.type === 'CNAME' || rr.type === type) minTtl = Math.min(minTtl, rr.ttl ?? 0);
      if (rr.type !== type) continue;
      records.push(convert(type, rr) as RecordMap[T]);
    }
    if (rcode === 'NOERROR' && records.length > 0) {
      return { name: qname, type, status: 'ok', records, ttl: this.clampTtl(minTtl === Infinity ? 0 : minTtl), fromCache: false };
    }
    const soa = ((res.authorities ?? []) as packet.Answer[]).find((rr) => rr.type === 'SOA') as packet.SoaAnswer | undefined;
    const negTtl = soa ? Math.min(soa.ttl ?? 0, soa.data.minimum ?? 0) : this.opts.negativeTtl;
    return { name: qname, type, status: rcode === 'NXDOMAIN' ? 'nxdomain' : 'nodata', records: [], ttl: this.clampTtl(negTtl), fromCache: false };
  }

  private exchange(server: Server, qname: string, type: RRType): Promise<Raw> {
    const id = randomInt(0, 65536);
    const query = packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ type, name: qname, class: 'IN' }] });
    return this.udp(server, query, id, qname, type).then((res) => (res.flag_tc ? this.tcp(server, query, id, qname, type) : res));
  }

  private udp(server: Server, query: Buffer, id: number, qname: string, type: RRType): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const family = net.isIPv6(server.host) ? 'udp6' : 'udp4';
      const sock = dgram.createSocket(family);
      let done = false;
      const finish = (err: DnsError | null, res?: Raw) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.close();
        if (err) reject(err);
        else resolve(res as Raw);
      };
      const timer = setTimeout(() => finish(new DnsError('DNS_TIMEOUT', qname, type, `no answer from ${server.host}:${server.port} in ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
      sock.on('error', (e) => finish(new DnsError('DNS_NETWORK', qname, type, e.message)));
      sock.on('message', (msg) => {
        let res: Raw;
        try {
          res = packet.decode(msg) as Raw;
        } catch {
          return; // garbage: keep waiting for the real answer until the timeout
        }
        // answers to other ids or questions are spoofing attempts or late replies: ignore
        const q = res.questions?.[0];
        if (res.id !== id || !q || normalizeHostname(q.name, { validate: false }) !== qname || q.type !== type) return;
        finish(null, res);
      });
      try {
        sock.send(query, server.port, server.host, (e) => {
          if (e) finish(new DnsError('DNS_NETWORK', qname, type, e.message));
        });
      } catch (e) {
        finish(new DnsError('DNS_NETWORK', qname, type, e instanceof Error ? e.message : String(e)));
      }
    });
  }

  private tcp(server: Server, query: Buffer, id: number, qname: string, type: RRType): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: server.host, port: server.port });
      let buf = Buffer.alloc(0);
      let done = false;
      const finish = (err: DnsError | null, res?: Raw) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.destroy();
        if (err) reject(err);
        else resolve(res as Raw);
      };
      const timer = setTimeout(() => finish(new DnsError('DNS_TIMEOUT', qname, type, `no TCP answer from ${server.host}:${server.port}`)), this.opts.timeoutMs);
      sock.on('error', (e) => finish(new DnsError('DNS_NETWORK', qname, type, e.message)));
      sock.on('connect', () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(query.length);
        sock.write(Buffer.concat([len, query]));
      });
      sock.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < 2) return;
        const n = buf.readUInt16BE(0);
        if (buf.length < n + 2) return;
        try {
          const res = packet.decode(buf.subarray(2, n + 2)) as Raw;
          if (res.id !== id) return finish(new DnsError('DNS_FORMAT', qname, type, 'TCP answer id mismatch'));
          finish(null, res);
        } catch (e) {
          finish(new DnsError('DNS_FORMAT', qname, type, e instanceof Error ? e.message : String(e)));
        }
      });
    });
  }
}

function convert(type: RRType, rr: packet.Answer): RecordMap[RRType] {
  const data = (rr as { data: unknown }).data;
  switch (type) {
    case 'A':
    case 'AAAA':
      return String(data);
    case 'PTR':
    case 'CNAME':
    case 'NS':
      return normalizeHostname(String(data), { validate: false });
    case 'MX': {
      const mx = data as { exchange: string; preference: number };
      return { exchange: normalizeHostname(mx.exchange, { validate: false }), priority: mx.preference };
    }
    case 'TXT': {
      const parts = Array.isArray(data) ? data : [data];
      return parts.map((p) => (Buffer.isBuffer(p) ? p.toString('utf8') : String(p))).join('');
    }
    case 'SOA': {
      const s = data as { mname: string; rname: string; minimum: number };
      return { mname: s.mname, rname: s.rname, minimum: s.minimum };
    }
  }
}
