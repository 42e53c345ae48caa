/**
 * The project's DNS fixture: a UDP server on 127.0.0.1 that answers from a zone table, with TTLs,
 * SOA records for negative answers, failure rcodes, dropped queries and a configurable delay.
 * Counts queries so tests and the bench can assert how many reached the wire.
 *
 * For attacker tests: `tcp: true` also answers over TCP on the same port (and `truncate` sends the
 * UDP answer with TC set and no records, so the client must ask again over TCP); an entry's `forge`
 * replaces the genuine answer by the packets it returns (forged ones, and the genuine one or not);
 * `onQuery` sees every UDP query with its id and the client's source port, so a second socket can
 * send a spoofed answer to it.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import * as packet from 'dns-packet';

export interface ZoneEntry {
  A?: string[];
  AAAA?: string[];
  PTR?: string[];
  MX?: Array<{ exchange: string; priority: number }>;
  TXT?: string[];
  CNAME?: string;
  ttl?: number;
  /** answer with this rcode instead of data */
  rcode?: 'SERVFAIL' | 'REFUSED' | 'NXDOMAIN' | 'FORMERR';
  /** never answer (a timeout) */
  drop?: boolean;
  delayMs?: number;
  /** UDP answers carry TC and no records: the full answer is only given over TCP (needs `tcp`) */
  truncate?: boolean;
  /** owner name of the SOA in a negative answer (default: the question's last label) */
  soaOwner?: string;
  /** the packets to send instead of the genuine answer (which is passed in), in order */
  forge?: (genuine: packet.Packet, via: 'udp' | 'tcp') => packet.Packet[];
}

/** one UDP query as the fixture saw it */
export interface SeenQuery {
  readonly id: number;
  readonly name: string;
  readonly type: string;
  /** the client's source address and port */
  readonly address: string;
  readonly port: number;
}

export interface DnsFixtureOptions {
  /** added to every answer */
  delayMs?: number;
  /** SOA TTL / MINIMUM for negative answers (null: no SOA) */
  negativeTtl?: number | null;
  /** also answer over TCP on the same port */
  tcp?: boolean;
}

export class DnsFixture {
  readonly zones = new Map<string, ZoneEntry>();
  queries: Array<{ name: string; type: string; via?: 'udp' | 'tcp' }> = [];
  /** called for every UDP query before it is answered */
  onQuery: ((q: SeenQuery) => void) | null = null;
  private sock: dgram.Socket | null = null;
  private tcpServer: net.Server | null = null;
  port = 0;

  constructor(readonly opts: DnsFixtureOptions = {}) {}

  static async start(zones: Record<string, ZoneEntry> = {}, opts: DnsFixtureOptions = {}): Promise<DnsFixture> {
    const d = new DnsFixture(opts);
    for (const [k, v] of Object.entries(zones)) d.set(k, v);
    await d.listen();
    return d;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  set(name: string, entry: ZoneEntry): void {
    this.zones.set(name.toLowerCase().replace(/\.$/, ''), entry);
  }

  countFor(name: string, type?: string): number {
    const n = name.toLowerCase();
    return this.queries.filter((q) => q.name === n && (!type || q.type === type)).length;
  }

  private async listen(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const tcp = this.opts.tcp ? await this.listenTcp() : null;
      try {
        await this.listenUdp(tcp ? tcp.port : 0);
        this.tcpServer = tcp?.server ?? null;
        return;
      } catch (err) {
        // the TCP port is taken for UDP: try another one
        tcp?.server.close();
        if (attempt >= 5) throw err;
      }
    }
  }

  private listenUdp(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket('udp4');
      sock.once('error', reject);
      sock.on('message', (msg, rinfo) => this.answer(msg, rinfo));
      sock.bind(port, '127.0.0.1', () => {
        sock.off('error', reject);
        this.sock = sock;
        this.port = sock.address().port;
        resolve();
      });
    });
  }

  private listenTcp(): Promise<{ server: net.Server; port: number }> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((conn) => this.serveTcp(conn));
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port }));
    });
  }

  close(): Promise<void> {
    this.tcpServer?.close();
    return new Promise((resolve) => (this.sock ? this.sock.close(() => resolve()) : resolve()));
  }

  /** the question of a query, or null for garbage */
  private parse(msg: Buffer): { q: packet.DecodedPacket; question: packet.Question; name: string } | null {
    let q: packet.DecodedPacket;
    try {
      q = packet.decode(msg);
    } catch {
      return null;
    }
    const question = q.questions?.[0];
    if (!question) return null;
    return { q, question, name: question.name.toLowerCase().replace(/\.$/, '') };
  }

  private answer(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const p = this.parse(msg);
    if (!p) return;
    const { q, question, name } = p;
    this.queries.push({ name, type: question.type, via: 'udp' });
    this.onQuery?.({ id: q.id ?? 0, name, type: question.type, address: rinfo.address, port: rinfo.port });
    const entry = this.zones.get(name);
    if (entry?.drop) return;
    const delay = (this.opts.delayMs ?? 0) + (entry?.delayMs ?? 0);
    const replies = this.replies(q.id ?? 0, question, name, entry, 'udp');
    const send = () => {
      for (const r of replies) this.sock?.send(r, rinfo.port, rinfo.address);
    };
    if (delay > 0) setTimeout(send, delay);
    else send();
  }

  private serveTcp(conn: net.Socket): void {
    let buf = Buffer.alloc(0);
    conn.on('error', () => undefined);
    conn.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= buf.readUInt16BE(0) + 2) {
        const msg = buf.subarray(2, buf.readUInt16BE(0) + 2);
        buf = buf.subarray(msg.length + 2);
        const p = this.parse(msg);
        if (!p) continue;
        this.queries.push({ name: p.name, type: p.question.type, via: 'tcp' });
        const entry = this.zones.get(p.name);
        if (entry?.drop) continue;
        for (const r of this.replies(p.q.id ?? 0, p.question, p.name, entry, 'tcp')) {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(r.length);
          conn.write(Buffer.concat([len, r]));
        }
      }
    });
  }

  private replies(id: number, question: packet.Question, name: string, entry: ZoneEntry | undefined, via: 'udp' | 'tcp'): Buffer[] {
    let genuine = this.build(id, question, name, entry);
    if (via === 'udp' && entry?.truncate) genuine = { ...genuine, flags: (genuine.flags ?? 0) | packet.TRUNCATED_RESPONSE, answers: [], authorities: [] };
    const out = entry?.forge ? entry.forge(genuine, via) : [genuine];
    return out.map((r) => packet.encode(r));
  }

  private build(id: number, question: packet.Question, name: string, entry: ZoneEntry | undefined): packet.Packet {
    const ttl = entry?.ttl ?? 300;
    const answers: packet.Answer[] = [];
    let rcode = entry?.rcode ?? (entry ? 'NOERROR' : 'NXDOMAIN');
    if (entry && !entry.rcode) {
      if (entry.CNAME) answers.push({ type: 'CNAME', name, ttl, data: entry.CNAME } as packet.Answer);
      const target = entry.CNAME ? this.zones.get(entry.CNAME) : entry;
      const t = question.type as keyof ZoneEntry;
      const data = target?.[t];
      const owner = entry.CNAME ?? name;
      if (Array.isArray(data)) {
        for (const d of data) {
          if (t === 'MX') {
            const mx = d as { exchange: string; priority: number };
            answers.push({ type: 'MX', name: owner, ttl, data: { exchange: mx.exchange, preference: mx.priority } } as packet.Answer);
          } else if (t === 'TXT') {
            // one TXT record is a list of character-strings of at most 255 bytes
            const text = d as string;
            const chunks = text.match(/[^]{1,255}/g) ?? [''];
            answers.push({ type: 'TXT', name: owner, ttl, data: chunks } as packet.Answer);
          } else {
            answers.push({ type: t, name: owner, ttl, data: d } as packet.Answer);
          }
        }
      }
      if (entry.CNAME && !target) rcode = 'NOERROR';
    }
    const neg = this.opts.negativeTtl === undefined ? 60 : this.opts.negativeTtl;
    const authorities: packet.Answer[] =
      answers.length === 0 && (rcode === 'NOERROR' || rcode === 'NXDOMAIN') && neg !== null
        ? [{ type: 'SOA', name: entry?.soaOwner ?? name.split('.').pop() ?? '', ttl: neg, data: { mname: 'ns.example', rname: 'hostmaster.example', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: neg } } as packet.Answer]
        : [];
    const rcodes: Record<string, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 };
    return {
      type: 'response',
      id,
      flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | (rcodes[rcode] ?? 0),
      questions: [question],
      answers,
      authorities,
    };
  }
}
