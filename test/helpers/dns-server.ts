/**
 * The project's DNS fixture: a UDP server on 127.0.0.1 that answers from a zone table, with TTLs,
 * SOA records for negative answers, failure rcodes, dropped queries and a configurable delay.
 * Counts queries so tests and the bench can assert how many reached the wire.
 */
import dgram from 'node:dgram';
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
}

export interface DnsFixtureOptions {
  /** added to every answer */
  delayMs?: number;
  /** SOA TTL / MINIMUM for negative answers (null: no SOA) */
  negativeTtl?: number | null;
}

export class DnsFixture {
  readonly zones = new Map<string, ZoneEntry>();
  queries: Array<{ name: string; type: string }> = [];
  private sock: dgram.Socket | null = null;
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

  private listen(): Promise<void> {
    return new Promise((resolve) => {
      const sock = dgram.createSocket('udp4');
      this.sock = sock;
      sock.on('message', (msg, rinfo) => this.answer(msg, rinfo));
      sock.bind(0, '127.0.0.1', () => {
        this.port = sock.address().port;
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.sock ? this.sock.close(() => resolve()) : resolve()));
  }

  private answer(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    let q: packet.DecodedPacket;
    try {
      q = packet.decode(msg);
    } catch {
      return;
    }
    const question = q.questions?.[0];
    if (!question) return;
    const name = question.name.toLowerCase().replace(/\.$/, '');
    this.queries.push({ name, type: question.type });
    const entry = this.zones.get(name);
    if (entry?.drop) return;
    const delay = (this.opts.delayMs ?? 0) + (entry?.delayMs ?? 0);
    const reply = this.build(q.id ?? 0, question, name, entry);
    const send = () => this.sock?.send(reply, rinfo.port, rinfo.address);
    if (delay > 0) setTimeout(send, delay);
    else send();
  }

  private build(id: number, question: packet.Question, name: string, entry: ZoneEntry | undefined): Buffer {
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
        ? [{ type: 'SOA', name: 'example', ttl: neg, data: { mname: 'ns.example', rname: 'hostmaster.example', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: neg } } as packet.Answer]
        : [];
    const rcodes: Record<string, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 };
    return packet.encode({
      type: 'response',
      id,
      flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | (rcodes[rcode] ?? 0),
      questions: [question],
      answers,
      authorities,
    });
  }
}
