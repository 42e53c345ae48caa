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
 *   "not listed". A name that cannot be a query (a label over 63 octets, a name over 253, an empty
 *   label) is refused at once with DNS_BAD_NAME: it is never sent, so nothing waits for an answer.
 * - Answers are accepted only from the server asked, for the question asked (RFC 5452): each query
 *   has its own UDP socket connected to the nameserver (the kernel drops datagrams from any other
 *   address or port, and the source is checked again), a random id and source port; a reply must
 *   be a response (QR=1) to a QUERY whose one question is ours (name case-insensitively, type,
 *   class IN); anything else is ignored while the real answer is awaited. Over TCP a reply that does
 *   not match fails that try, and the next try goes on (to the next nameserver), as over UDP.
 * - Records are taken from the question name and along its CNAME chain only; records of any other
 *   owner in the same packet are ignored. The SOA that sets a negative answer's TTL must be owned by
 *   a suffix of the question name (or of a name of its CNAME chain): the zone, a parent or the root;
 *   another SOA is ignored and `negativeTtl` applies.
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

export interface QueryOptions {
  /**
   * Ask the nameserver even when the cache holds an answer, and do not share a query in flight
   * (health probes: a repaired zone must be seen as repaired at once). The answer replaces the
   * cached one, so the cache never holds an answer older than the last one from the wire.
   */
  readonly fresh?: boolean;
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

/** the longest name a question can hold, in text form without the final dot (RFC 1035 2.3.4: 255 on the wire) */
const MAX_NAME = 253;
const MAX_LABEL = 63;
/** CNAME records followed from the question name before giving up (a loop or an absurd chain) */
const MAX_CNAME_HOPS = 16;

/**
 * Why a name cannot be the question of a query, or null when it can: a name over 253 octets, a label
 * over 63 or an empty label (dns-packet would encode them into a packet no server can read, and the
 * query would wait for an answer that never comes). Names are counted in octets, as sent (UTF-8).
 */
export function queryNameProblem(name: string): string | null {
  if (name === '') return 'an empty name';
  const octets = Buffer.byteLength(name);
  if (octets > MAX_NAME) return `the name is ${octets} octets, longer than ${MAX_NAME}`;
  let start = 0;
  for (;;) {
    const dot = name.indexOf('.', start);
    const label = dot === -1 ? name.slice(start) : name.slice(start, dot);
    if (label === '') return 'an empty label';
    // a UTF-16 code unit is at most 3 octets: only a label longer than 21 needs counting
    if (label.length > MAX_LABEL / 3) {
      const n = Buffer.byteLength(label);
      if (n > MAX_LABEL) return `a label of ${n} octets, longer than ${MAX_LABEL}`;
    }
    if (dot === -1) return null;
    start = dot + 1;
  }
}

/** a name as compared: lower case, without the final dot */
function canon(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

/** is `zone` the name itself or one of its parents (label by label; '' is the root)? */
function isSuffix(zone: string, name: string): boolean {
  return zone === '' || zone === name || (name.length > zone.length && name.endsWith(zone) && name[name.length - zone.length - 1] === '.');
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

type Raw = packet.DecodedPacket & { rcode?: string; opcode?: string };

/** is this packet the server's response to our question (RFC 5452 section 9.1)? */
function answersQuestion(res: Raw, id: number, qname: string, type: RRType): boolean {
  if (res.id !== id || !res.flag_qr || res.opcode !== 'QUERY') return false;
  const qs = res.questions;
  if (!qs || qs.length !== 1) return false;
  const q = qs[0] as packet.Question;
  return q.type === type && (q.class ?? 'IN') === 'IN' && canon(q.name) === qname;
}

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

  /**
   * Resolve one name and type; throws DnsError on timeout or server failure, and at once (without a
   * query) with DNS_BAD_NAME for a name that cannot be a query.
   */
  query<T extends RRType>(name: string, type: T, opts?: QueryOptions): Promise<DnsAnswer<T>> {
    const qname = normalizeHostname(name, { validate: false });
    const bad = queryNameProblem(qname);
    if (bad) return Promise.reject(new DnsError('DNS_BAD_NAME', qname, type, `cannot be asked: ${bad}`));
    const key = `${type} ${qname}`;
    if (opts?.fresh) return this.lookup(qname, type);
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
    // a fresh answer replaces (and moves to the young end) the one it refreshes
    this.cache.delete(key);
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
        // the server said our question is malformed: it will not get better elsewhere (a reply
        // that did not match, over UDP or TCP, is DNS_TIMEOUT or DNS_NETWORK and is tried again)
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

    // records from the question name, then along its CNAME chain; other owners are not ours
    const answers = (res.answers ?? []) as packet.Answer[];
    const owners = answers.map((rr) => canon(rr.name));
    const chain = [qname];
    const records: RecordMap[T][] = [];
    let minTtl = Infinity;
    for (let hop = 0; ; hop++) {
      const owner = chain[chain.length - 1] as string;
      const found: RecordMap[T][] = [];
      let foundTtl = Infinity;
      let next: string | null = null;
      let nextTtl = 0;
      answers.forEach((rr, i) => {
        const cls = (rr as { class?: string }).class;
        if (owners[i] !== owner || (cls !== undefined && cls !== 'IN')) return;
        if (rr.type === type) {
          found.push(convert(type, rr) as RecordMap[T]);
          foundTtl = Math.min(foundTtl, rr.ttl ?? 0);
        } else if (rr.type === 'CNAME' && next === null) {
          next = canon(String(rr.data));
          nextTtl = rr.ttl ?? 0;
        }
      });
      // a name with a CNAME has no other data (RFC 1034 3.6.2): follow it, whatever sits beside it
      if (next !== null && hop < MAX_CNAME_HOPS && !chain.includes(next)) {
        minTtl = Math.min(minTtl, nextTtl);
        chain.push(next);
        continue;
      }
      // a loop or an absurd chain is a broken zone, not "no such record": an error, never cached
      // (for a DNS list, a silent "not listed" is what must not happen)
      if (next !== null) throw new DnsError('DNS_SERVFAIL', qname, type, chain.includes(next) ? 'CNAME loop' : `CNAME chain longer than ${MAX_CNAME_HOPS}`);
      if (next === null) {
        records.push(...found);
        minTtl = Math.min(minTtl, foundTtl);
      }
      break;
    }
    if (rcode === 'NOERROR' && records.length > 0) {
      return { name: qname, type, status: 'ok', records, ttl: this.clampTtl(minTtl === Infinity ? 0 : minTtl), fromCache: false };
    }
    // RFC 2308: the SOA of the zone that said no; it must be a suffix of a name we asked about
    const soa = ((res.authorities ?? []) as packet.Answer[]).find((rr) => rr.type === 'SOA' && chain.some((n) => isSuffix(canon(rr.name), n))) as packet.SoaAnswer | undefined;
    const negTtl = Math.min(soa ? Math.min(soa.ttl ?? 0, soa.data.minimum ?? 0) : this.opts.negativeTtl, minTtl);
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
      // one socket per query, connected to the nameserver: a random source port per query, and the
      // kernel drops datagrams from any other address or port
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
      sock.on('message', (msg, rinfo) => {
        // checked again, whatever the socket layer did
        if (rinfo.port !== server.port || !sameAddress(rinfo.address, server.host)) return;
        let res: Raw;
        try {
          res = packet.decode(msg) as Raw;
        } catch {
          return; // garbage: keep waiting for the real answer until the timeout
        }
        // not a response to our question (another id, QR=0, another opcode or question): a
        // spoofing attempt or a late reply; keep waiting for ours
        if (!answersQuestion(res, id, qname, type)) return;
        finish(null, res);
      });
      sock.on('connect', () => {
        try {
          sock.send(query, (e) => {
            if (e) finish(new DnsError('DNS_NETWORK', qname, type, e.message));
          });
        } catch (e) {
          finish(new DnsError('DNS_NETWORK', qname, type, e instanceof Error ? e.message : String(e)));
        }
      });
      try {
        sock.connect(server.port, server.host);
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
        // one answer per connection: if it is not the answer to our question, this try has failed
        // (DNS_NETWORK: the next try goes on, to the next nameserver)
        let res: Raw;
        try {
          res = packet.decode(buf.subarray(2, n + 2)) as Raw;
        } catch (e) {
          return finish(new DnsError('DNS_NETWORK', qname, type, `unreadable TCP answer from ${server.host}:${server.port}: ${e instanceof Error ? e.message : String(e)}`));
        }
        if (!answersQuestion(res, id, qname, type)) return finish(new DnsError('DNS_NETWORK', qname, type, `the TCP answer from ${server.host}:${server.port} is not for our question`));
        finish(null, res);
      });
    });
  }
}

/** the source of a datagram is the nameserver (addresses compared as parsed: ::1 and 0:0::1 are one) */
function sameAddress(address: string, host: string): boolean {
  if (address === host) return true;
  const a = parseIp(address);
  return a !== null && a.text === parseIp(host)?.text;
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
