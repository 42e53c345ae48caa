/**
 * The resolver on the wire, against hand-made servers on loopback: spoofed and garbage UDP answers
 * are ignored, a truncated answer is asked again over TCP, and TCP faults are DNS errors.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import * as packet from 'dns-packet';
import { Resolver } from '../../plugins/shield/core/dns';
import { DnsError } from '../../plugins/shield/core/errors';

type Q = packet.DecodedPacket;

function response(q: Q, over: Partial<packet.Packet> = {}): Buffer {
  const question = q.questions?.[0] as packet.Question;
  return packet.encode({
    type: 'response',
    id: q.id ?? 0,
    flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE,
    questions: [question],
    answers: [{ type: 'A', name: question.name, ttl: 300, data: '192.0.2.53' } as packet.Answer],
    ...over,
  });
}

interface Wire {
  port: number;
  udpSeen: number;
  tcpSeen: number;
  close(): Promise<void>;
}

/** a UDP server (and a TCP one on the same port) whose answers the test writes */
async function wire(udp: (q: Q, send: (b: Buffer) => void) => void, tcp?: (q: Q, sock: net.Socket) => void): Promise<Wire> {
  const u = dgram.createSocket('udp4');
  const w: Wire = { port: 0, udpSeen: 0, tcpSeen: 0, close: async () => undefined };
  u.on('message', (msg, rinfo) => {
    w.udpSeen++;
    udp(packet.decode(msg), (b) => u.send(b, rinfo.port, rinfo.address));
  });
  await new Promise<void>((r) => u.bind(0, '127.0.0.1', () => r()));
  w.port = u.address().port;
  let server: net.Server | null = null;
  const socks = new Set<net.Socket>();
  if (tcp) {
    server = net.createServer((sock) => {
      socks.add(sock);
      let buf = Buffer.alloc(0);
      sock.on('error', () => undefined);
      sock.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < 2 || buf.length < buf.readUInt16BE(0) + 2) return;
        w.tcpSeen++;
        tcp(packet.decode(buf.subarray(2, buf.readUInt16BE(0) + 2)), sock);
      });
    });
    await new Promise<void>((r) => server!.listen(w.port, '127.0.0.1', () => r()));
  }
  w.close = async () => {
    for (const s of socks) s.destroy();
    await new Promise<void>((r) => u.close(() => r()));
    if (server) await new Promise<void>((r) => server!.close(() => r()));
  };
  return w;
}

const framed = (b: Buffer) => {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
};

const resolver = (port: number, timeoutMs = 300) => new Resolver({ nameservers: [`127.0.0.1:${port}`], timeoutMs, tries: 1, cacheSize: 0, minTtl: 0, maxTtl: 3600, negativeTtl: 30 });

describe('dns on the wire: UDP answers that are not ours are ignored', function () {
  this.timeout(5000);

  it('garbage, another id, another name and another type are skipped; the real answer is taken', async () => {
    const w = await wire((q, send) => {
      send(Buffer.from('not dns at all'));
      send(response({ ...q, id: ((q.id ?? 0) + 1) % 65536 }, { answers: [{ type: 'A', name: 'x', ttl: 300, data: '203.0.113.66' } as packet.Answer] }));
      send(response({ ...q, questions: [{ type: 'A', name: 'other.example.com' }] }, { answers: [{ type: 'A', name: 'other.example.com', ttl: 300, data: '203.0.113.67' } as packet.Answer] }));
      send(response({ ...q, questions: [{ type: 'AAAA', name: 'spoof.example.com' }] }, { answers: [] }));
      send(packet.encode({ type: 'response', id: q.id ?? 0, flags: 0, questions: [], answers: [{ type: 'A', name: 'spoof.example.com', ttl: 300, data: '203.0.113.68' } as packet.Answer] }));
      setTimeout(() => send(response(q)), 20);
    });
    try {
      const a = await resolver(w.port).query('spoof.example.com', 'A');
      assert.deepEqual(a.records, ['192.0.2.53']);
    } finally {
      await w.close();
    }
  });

  it('only spoofed answers: a timeout, never their records', async () => {
    const w = await wire((q, send) => send(response({ ...q, id: ((q.id ?? 0) + 7) % 65536 })));
    try {
      await assert.rejects(resolver(w.port, 150).query('spoof.example.com', 'A'), (e: unknown) => e instanceof DnsError && e.code === 'DNS_TIMEOUT');
    } finally {
      await w.close();
    }
  });

  it('the question name is compared without case or final dot', async () => {
    const w = await wire((q, send) => send(response({ ...q, questions: [{ type: 'A', name: 'SPOOF.Example.com.' }] })));
    try {
      assert.deepEqual((await resolver(w.port).query('spoof.example.com', 'A')).records, ['192.0.2.53']);
    } finally {
      await w.close();
    }
  });

  it('an rcode that is no answer (YXDOMAIN) is SERVFAIL; NOTIMP is a format error', async () => {
    const w = await wire((q, send) => send(response(q, { flags: packet.RECURSION_AVAILABLE | (q.questions?.[0]?.name.startsWith('yx') ? 6 : 4), answers: [] })));
    try {
      await assert.rejects(resolver(w.port).query('yx.example.com', 'A'), (e: unknown) => e instanceof DnsError && e.code === 'DNS_SERVFAIL' && e.message === 'DNS A yx.example.com: YXDOMAIN');
      await assert.rejects(resolver(w.port).query('ni.example.com', 'A'), (e: unknown) => e instanceof DnsError && e.code === 'DNS_FORMAT' && e.message === 'DNS A ni.example.com: NOTIMP');
    } finally {
      await w.close();
    }
  });
});

describe('dns on the wire: truncated answers go to TCP', function () {
  this.timeout(5000);

  it('TC set: asks again over TCP and takes that answer (split across packets)', async () => {
    const w = await wire(
      (q, send) => send(response(q, { flags: packet.TRUNCATED_RESPONSE | packet.RECURSION_AVAILABLE, answers: [] })),
      (q, sock) => {
        const b = framed(response(q, { answers: ['192.0.2.1', '192.0.2.2', '192.0.2.3'].map((d) => ({ type: 'A', name: 'big.example.com', ttl: 300, data: d }) as packet.Answer) }));
        sock.write(b.subarray(0, 1));
        setTimeout(() => sock.write(b.subarray(1, 10)), 10);
        setTimeout(() => sock.write(b.subarray(10)), 20);
      },
    );
    try {
      const a = await resolver(w.port).query('big.example.com', 'A');
      assert.deepEqual(a.records, ['192.0.2.1', '192.0.2.2', '192.0.2.3']);
      assert.deepEqual([w.udpSeen, w.tcpSeen], [1, 1]);
    } finally {
      await w.close();
    }
  });

  it('a TCP answer with another id is not ours: an error naming it (and the next try goes on)', async () => {
    const w = await wire(
      (q, send) => send(response(q, { flags: packet.TRUNCATED_RESPONSE, answers: [] })),
      (q, sock) => sock.write(framed(response({ ...q, id: ((q.id ?? 0) + 1) % 65536 }))),
    );
    try {
      await assert.rejects(resolver(w.port).query('big.example.com', 'A'), (e: unknown) => e instanceof DnsError && /^DNS A big\.example\.com: the TCP answer from 127\.0\.0\.1:\d+ is not for our question$/.test(e.message));
    } finally {
      await w.close();
    }
  });

  it('a TCP answer that does not decode is an error naming the server', async () => {
    const w = await wire(
      (q, send) => send(response(q, { flags: packet.TRUNCATED_RESPONSE, answers: [] })),
      (_q, sock) => sock.write(framed(Buffer.from([1, 2, 3]))),
    );
    try {
      await assert.rejects(resolver(w.port).query('big.example.com', 'A'), (e: unknown) => e instanceof DnsError && /unreadable TCP answer from 127\.0\.0\.1:\d+/.test(e.message));
    } finally {
      await w.close();
    }
  });

  it('no TCP answer in time: a timeout that says TCP', async () => {
    const w = await wire(
      (q, send) => send(response(q, { flags: packet.TRUNCATED_RESPONSE, answers: [] })),
      () => undefined,
    );
    try {
      await assert.rejects(resolver(w.port, 150).query('big.example.com', 'A'), (e: unknown) => e instanceof DnsError && e.code === 'DNS_TIMEOUT' && e.message === `DNS A big.example.com: no TCP answer from 127.0.0.1:${w.port}`);
    } finally {
      await w.close();
    }
  });

  it('nobody listening on TCP: a network error', async () => {
    const w = await wire((q, send) => send(response(q, { flags: packet.TRUNCATED_RESPONSE, answers: [] })));
    try {
      await assert.rejects(resolver(w.port).query('big.example.com', 'A'), (e: unknown) => e instanceof DnsError && e.code === 'DNS_NETWORK' && /ECONNREFUSED/.test(e.message));
    } finally {
      await w.close();
    }
  });
});
