/**
 * The resolver against an attacker (issue 12, DNS client defects). A fixture server answers
 * genuinely; forged answers come from a second socket (another port, another address) with the
 * right id sent to the client's source port, or from the server itself with QR=0, a wrong opcode,
 * a wrong question, records whose owner is unrelated, a CNAME chain that does not start at the
 * question, an SOA for another zone, a TCP answer with a wrong id. None of them may be accepted or
 * cached; legitimate answers (CNAME chains, negative answers with a proper SOA, TCP) still work.
 * Then the same at the level that matters: FCrDNS and a DNSBL listing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as packet from 'dns-packet';
import { Resolver, queryNameProblem } from '../../plugins/shield/core/dns';
import { DnsError } from '../../plugins/shield/core/errors';
import { parseIp, type ParsedIp } from '../../plugins/shield/core/net';
import { fcrdns } from '../../plugins/shield/checks/rdns';
import { parseDnsblConfig } from '../../plugins/shield/checks/dnsbl-config';
import { ZoneLookups, domainLookups, ipLookups } from '../../plugins/shield/checks/dnsbl-lookup';
import { DnsFixture, type SeenQuery } from '../helpers/dns-server';

const EVIL = '203.0.113.66';
const forgedA = (name: string, data = EVIL, ttl = 86400): packet.Answer => ({ type: 'A', name, ttl, data }) as packet.Answer;
const NXDOMAIN = 3;

/** a socket that is not the server, sending answers it made up to the client's source port */
class Attacker {
  private constructor(readonly sock: dgram.Socket) {}
  static bind(address: string, port = 0): Promise<Attacker> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket('udp4');
      sock.once('error', reject);
      sock.bind(port, address, () => resolve(new Attacker(sock)));
    });
  }
  answer(q: SeenQuery, p: { answers?: packet.Answer[]; authorities?: packet.Answer[]; rcode?: number }): void {
    const msg = packet.encode({
      type: 'response',
      id: q.id,
      flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | (p.rcode ?? 0),
      questions: [{ name: q.name, type: q.type as packet.RecordType, class: 'IN' }],
      answers: p.answers ?? [],
      authorities: p.authorities ?? [],
    });
    this.sock.send(msg, q.port, q.address);
  }
  close(): void {
    this.sock.close();
  }
}

describe('dns resolver against forged answers', function () {
  this.timeout(10000);
  let dns: DnsFixture;
  let now = 1_000_000;
  const clock = () => now;
  const make = (over: Partial<ConstructorParameters<typeof Resolver>[0]> = {}) =>
    new Resolver({ nameservers: [dns.address], timeoutMs: 400, tries: 2, cacheSize: 100, minTtl: 0, maxTtl: 86400, negativeTtl: 30, now: clock, ...over });
  const attackers: Attacker[] = [];
  const attacker = async (address: string, port = 0) => {
    const a = await Attacker.bind(address, port);
    attackers.push(a);
    return a;
  };

  before(async () => {
    dns = await DnsFixture.start({}, { tcp: true });
  });
  after(() => dns.close());
  beforeEach(() => {
    dns.queries = [];
    dns.onQuery = null;
    now = 1_000_000;
  });
  afterEach(() => {
    for (const a of attackers.splice(0)) a.close();
  });

  describe('answers from anyone but the server asked', () => {
    for (const [what, address, samePort] of [
      ['another port of the server\'s address', '127.0.0.1', false],
      ['another address, from the server\'s port', '127.0.0.2', true],
    ] as const) {
      it(`ignores a spoofed answer with the right id from ${what}, and does not cache it`, async () => {
        const name = `spoof-${samePort ? 'addr' : 'port'}.example.com`;
        dns.set(name, { A: ['192.0.2.1'], ttl: 60, delayMs: 100 });
        const atk = await attacker(address, samePort ? dns.port : 0);
        dns.onQuery = (q) => atk.answer(q, { answers: [forgedA(q.name)] });
        const r = make();
        const a = await r.query(name, 'A');
        assert.deepEqual(a.records, ['192.0.2.1']);
        assert.equal(a.ttl, 60);
        const b = await r.query(name, 'A');
        assert.equal(b.fromCache, true);
        assert.deepEqual(b.records, ['192.0.2.1'], 'the cache holds the genuine answer');
      });
    }

    it('a spoofed NXDOMAIN does not hide a record the server has', async () => {
      dns.set('listed.example.com', { A: ['127.0.0.2'], delayMs: 100 });
      const atk = await attacker('127.0.0.1');
      dns.onQuery = (q) => atk.answer(q, { rcode: NXDOMAIN, authorities: [soa('example.com', 86400)] });
      const a = await make().query('listed.example.com', 'A');
      assert.equal(a.status, 'ok');
      assert.deepEqual(a.records, ['127.0.0.2']);
    });
  });

  describe('answers from the server that do not answer our question', () => {
    const cases: Array<[string, (g: packet.Packet) => packet.Packet]> = [
      ['a query (QR=0) instead of a response', (g) => ({ ...g, type: 'query', answers: [forgedA(qn(g))] })],
      ['a response with another opcode (STATUS)', (g) => ({ ...g, flags: (g.flags ?? 0) | (2 << 11), answers: [forgedA(qn(g))] })],
      ['a response to another name', (g) => ({ ...g, questions: [{ name: 'other.example.com', type: 'A', class: 'IN' }], answers: [forgedA('other.example.com')] })],
      ['a response to another type', (g) => ({ ...g, questions: [{ name: qn(g), type: 'AAAA', class: 'IN' }], answers: [forgedA(qn(g))] })],
      ['a response to another class', (g) => ({ ...g, questions: [{ name: qn(g), type: 'A', class: 'CH' }], answers: [forgedA(qn(g))] })],
      ['a response with two questions', (g) => ({ ...g, questions: [...(g.questions ?? []), { name: 'x.example.com', type: 'A', class: 'IN' }], answers: [forgedA(qn(g))] })],
      ['a response without a question', (g) => ({ ...g, questions: [], answers: [forgedA(qn(g))] })],
    ];
    for (const [i, [what, forge]] of cases.entries()) {
      it(`ignores ${what}, then takes the genuine answer`, async () => {
        const name = `q${i}.example.com`;
        dns.set(name, { A: ['192.0.2.1'], forge: (g) => [forge(g), g] });
        const a = await make().query(name, 'A');
        assert.deepEqual(a.records, ['192.0.2.1']);
      });
    }

    it('takes a question whose name differs only in case (0x20 randomisation)', async () => {
      dns.set('case.example.com', { A: ['192.0.2.1'], forge: (g) => [{ ...g, questions: [{ name: 'CaSe.ExAmPlE.cOm', type: 'A', class: 'IN' }] }] });
      assert.deepEqual((await make().query('case.example.com', 'A')).records, ['192.0.2.1']);
    });
  });

  describe('records are read from the question name along its CNAME chain only', () => {
    it('an A record whose owner is unrelated is not an answer, and is not cached for its TTL', async () => {
      dns.set('mail.victim.example.com', { A: ['192.0.2.25'], forge: (g) => [{ ...g, answers: [forgedA('unrelated.example')] }] });
      const r = make();
      const a = await r.query('mail.victim.example.com', 'A');
      assert.deepEqual(a.records, []);
      assert.equal(a.status, 'nodata');
      assert.equal(a.ttl, 30, 'no SOA: the configured negative TTL, not the forged record\'s 86400');
      now += 31_000;
      assert.equal((await r.query('mail.victim.example.com', 'A')).fromCache, false);
    });

    it('keeps the records of the question name and drops the others of the same answer', async () => {
      dns.set('mixed.example.com', { A: ['192.0.2.1'], ttl: 120, forge: (g) => [{ ...g, answers: [forgedA('unrelated.example'), ...(g.answers ?? []), forgedA('mixed.example.com.evil.example')] }] });
      const a = await make().query('mixed.example.com', 'A');
      assert.deepEqual(a.records, ['192.0.2.1']);
      assert.equal(a.ttl, 120);
    });

    it('follows a CNAME chain from the question name, in any order, with the lowest TTL of the chain', async () => {
      dns.set('chain.example.com', {
        A: ['192.0.2.1'],
        forge: (g) => [
          {
            ...g,
            answers: [
              forgedA('c.example.org', '192.0.2.3', 300),
              cname('b.example.net', 'C.Example.Org.', 40),
              forgedA('b.example.net', EVIL, 300),
              cname('chain.example.com', 'b.example.net', 100),
            ],
          },
        ],
      });
      const a = await make().query('chain.example.com', 'A');
      assert.deepEqual(a.records, ['192.0.2.3'], 'the records at the end of the chain (a record beside a CNAME is ignored)');
      assert.equal(a.ttl, 40);
    });

    it('a chain that does not start at the question name is not followed', async () => {
      dns.set('nochain.example.com', { forge: (g) => [{ ...g, answers: [cname('other.example.com', 'evil.example'), forgedA('evil.example')] }] });
      const a = await make().query('nochain.example.com', 'A');
      assert.deepEqual(a.records, []);
    });

    it('a CNAME loop is an error (a broken zone), never "no such record" and never cached', async () => {
      dns.set('loop.example.com', { forge: (g) => [{ ...g, answers: [cname('loop.example.com', 'b.example.com'), cname('b.example.com', 'loop.example.com')] }] });
      const r = make();
      await assert.rejects(r.query('loop.example.com', 'A'), /CNAME loop/);
      await assert.rejects(r.query('loop.example.com', 'A'), /CNAME loop/, 'asked again, not answered from a cache');
    });

    it('a CNAME question gets the CNAME record itself', async () => {
      dns.set('alias.example.com', { CNAME: 'target.example.com' });
      dns.set('target.example.com', { A: ['192.0.2.9'] });
      assert.deepEqual((await make().query('alias.example.com', 'CNAME')).records, ['target.example.com']);
      assert.deepEqual((await make().query('alias.example.com', 'A')).records, ['192.0.2.9']);
    });
  });

  describe('the SOA of a negative answer must be for the question\'s zone', () => {
    const nx = (owner: string, ttl: number) => (g: packet.Packet): packet.Packet[] => [{ ...g, flags: ((g.flags ?? 0) & ~0xf) | NXDOMAIN, answers: [], authorities: [soa(owner, ttl)] }];
    it('an SOA whose owner is not a suffix of the question is ignored (the configured negative TTL applies)', async () => {
      for (const owner of ['unrelated.example', 'ample.com', 'x.nxsoa.example.com']) {
        const r = make();
        dns.set('nxsoa.example.com', { forge: nx(owner, 86400) });
        const a = await r.query('nxsoa.example.com', 'A');
        assert.equal(a.status, 'nxdomain');
        assert.equal(a.ttl, 30, owner);
      }
    });

    it('an SOA of the zone, a parent zone or the root sets the negative TTL', async () => {
      for (const owner of ['example.com', 'nxsoa.example.com', 'COM.', '']) {
        const r = make();
        dns.set('nxsoa.example.com', { forge: nx(owner, 900) });
        assert.equal((await r.query('nxsoa.example.com', 'A')).ttl, 900, owner);
      }
    });

    it('behind a CNAME, an SOA of the target\'s zone counts', async () => {
      dns.set('cn-nx.example.com', { forge: (g) => [{ ...g, answers: [cname('cn-nx.example.com', 'gone.example.org', 600)], authorities: [soa('example.org', 500)] }] });
      assert.equal((await make().query('cn-nx.example.com', 'A')).ttl, 500);
    });
  });

  describe('TCP', () => {
    let forger: DnsFixture;
    before(async () => {
      forger = await DnsFixture.start({}, { tcp: true });
    });
    after(() => forger.close());

    it('a truncated UDP answer is asked again over TCP', async () => {
      dns.set('big.example.com', { A: ['192.0.2.1', '192.0.2.2'], truncate: true });
      const a = await make().query('big.example.com', 'A');
      assert.deepEqual(a.records, ['192.0.2.1', '192.0.2.2']);
      assert.deepEqual(dns.queries.map((q) => q.via), ['udp', 'tcp']);
    });

    const tcpForgeries: Array<[string, (g: packet.Packet) => packet.Packet]> = [
      ['a wrong id', (g) => ({ ...g, id: ((g.id ?? 0) + 1) & 0xffff })],
      ['another question', (g) => ({ ...g, questions: [{ name: 'other.example.com', type: 'A', class: 'IN' }] })],
      ['QR=0', (g) => ({ ...g, type: 'query' })],
    ];
    for (const [what, forge] of tcpForgeries) {
      it(`a TCP answer with ${what} is not accepted, and the next try goes on to the next server`, async () => {
        forger.set('tcp.example.com', { A: [EVIL], truncate: true, forge: (g, via) => [via === 'tcp' ? forge(g) : g] });
        dns.set('tcp.example.com', { A: ['192.0.2.7'], truncate: true });
        const r = make({ nameservers: [forger.address, dns.address] });
        assert.deepEqual((await r.query('tcp.example.com', 'A')).records, ['192.0.2.7']);
      });
    }
  });

  describe('names that cannot be a query', () => {
    const long63 = 'a'.repeat(63);
    const name253 = `${long63}.${long63}.${long63}.${'d'.repeat(61)}`;
    it('knows the limits: 63 octets a label, 253 a name, no empty label', () => {
      assert.equal(name253.length, 253);
      assert.equal(queryNameProblem(name253), null);
      assert.match(queryNameProblem(`${name253}d`) ?? '', /254 octets/);
      assert.match(queryNameProblem(`${'a'.repeat(64)}.example.com`) ?? '', /label of 64 octets/);
      assert.match(queryNameProblem('a..example.com') ?? '', /empty label/);
      assert.match(queryNameProblem('') ?? '', /empty/);
      assert.match(queryNameProblem(`${'é'.repeat(32)}.example.com`) ?? '', /label of 64 octets/, 'octets, not characters');
    });

    for (const [what, name] of [
      ['a name over 253 octets', `${name253}d`],
      ['a label over 63 octets', `${'a'.repeat(64)}.example.com`],
      ['an empty label', 'a..example.com'],
    ] as const) {
      it(`${what} is refused at once with DNS_BAD_NAME, without a query`, async () => {
        const t0 = Date.now();
        await assert.rejects(make({ timeoutMs: 2000 }).query(name, 'A'), (e: unknown) => e instanceof DnsError && e.code === 'DNS_BAD_NAME' && e.temporary === false);
        assert.ok(Date.now() - t0 < 100, `took ${Date.now() - t0} ms`);
        assert.equal(dns.queries.length, 0);
      });
    }

    it('a name of exactly 253 octets is asked', async () => {
      const a = await make().query(name253, 'A');
      assert.equal(a.status, 'nxdomain');
      assert.equal(dns.queries.length, 1);
    });
  });

  describe('fresh queries (health probes)', () => {
    it('ask the server even when the cache holds an answer, and the cache then holds the fresh one', async () => {
      dns.set('fresh.example.com', { A: ['127.0.0.2'], ttl: 300 });
      const r = make();
      assert.deepEqual((await r.query('fresh.example.com', 'A')).records, ['127.0.0.2']);
      dns.set('fresh.example.com', { A: [], ttl: 300 });
      assert.equal((await r.query('fresh.example.com', 'A')).fromCache, true);
      const f = await r.query('fresh.example.com', 'A', { fresh: true });
      assert.equal(f.fromCache, false);
      assert.deepEqual(f.records, []);
      const c = await r.query('fresh.example.com', 'A');
      assert.equal(c.fromCache, true);
      assert.deepEqual(c.records, [], 'the repaired answer replaced the cached one');
      assert.equal(dns.countFor('fresh.example.com'), 2);
    });
  });

  it('the real-DNS guard sees the resolver\'s connected sockets too', () => {
    const log = path.join(os.tmpdir(), `guard-connect-${process.pid}.log`);
    fs.writeFileSync(log, '');
    const resolver = path.join(__dirname, '..', '..', 'plugins', 'shield', 'core', 'dns');
    const script = `
      const { Resolver } = require(${JSON.stringify(resolver)});
      const r = new Resolver({ nameservers: ['192.0.2.53'], timeoutMs: 200, tries: 1, cacheSize: 0, minTtl: 0, maxTtl: 1, negativeTtl: 1 });
      r.query('example.com', 'A').then(() => process.exit(2), (e) => process.exit(e.code === 'DNS_NETWORK' ? 0 : 3));
    `;
    const r = spawnSync(process.execPath, ['-r', path.join(__dirname, '..', 'setup', 'no-real-dns.js'), '-e', script], {
      env: { ...process.env, SHIELD_DNS_GUARD_LOG: log, NODE_OPTIONS: '' },
      encoding: 'utf8',
      timeout: 10000,
    });
    const lines = fs.readFileSync(log, 'utf8').trim();
    fs.rmSync(log);
    assert.equal(r.status, 0, r.stderr);
    assert.match(lines, /UDP to 192\.0\.2\.53:53/);
  });

  describe('what the forgeries would have earned', () => {
    const client = parseIp('198.18.0.5') as ParsedIp;

    it('a forged PTR and A from another port do not make a forward-confirmed name (no rDNS allow entry)', async () => {
      dns.set('5.0.18.198.in-addr.arpa', { PTR: ['dyn-5.isp.example.net'], delayMs: 100 });
      dns.set('dyn-5.isp.example.net', { A: ['198.18.0.5'] });
      dns.set('mail.victim.example.com', { A: ['192.0.2.25'], delayMs: 100 });
      const atk = await attacker('127.0.0.1');
      dns.onQuery = (q) => {
        if (q.type === 'PTR') atk.answer(q, { answers: [{ type: 'PTR', name: q.name, ttl: 86400, data: 'mail.victim.example.com' } as packet.Answer] });
        if (q.name === 'mail.victim.example.com') atk.answer(q, { answers: [forgedA(q.name, client.text)] });
      };
      const r = make();
      const ptr = await r.reverse(client.text);
      assert.deepEqual(ptr.records, ['dyn-5.isp.example.net']);
      assert.equal(await r.forwardConfirms('mail.victim.example.com', client), false);
      // the allow entry "rdns:mail.victim.example.com" would need exactly this to pass
      const res = await fcrdns(client, { status: 'ok', names: ['mail.victim.example.com'] }, r, 3);
      assert.equal(res.iprev, 'fail');
      assert.equal(res.confirmed, null);
    });

    it('an A record for an unrelated owner with the client\'s address does not confirm the name', async () => {
      dns.set('host.victim.example.com', { A: ['192.0.2.25'], forge: (g) => [{ ...g, answers: [forgedA('attacker.example', client.text)] }] });
      assert.equal(await make().forwardConfirms('host.victim.example.com', client), false);
    });

    it('a forged NXDOMAIN from another port does not clear a client the DNSBL lists', async () => {
      const cfg = parseDnsblConfig({ main: { zones: 'bl' }, bl: { zone: 'bl.example.net' } });
      dns.set('5.0.18.198.bl.example.net', { A: ['127.0.0.2'], delayMs: 100 });
      const atk = await attacker('127.0.0.1');
      dns.onQuery = (q) => atk.answer(q, { rcode: NXDOMAIN, authorities: [soa('bl.example.net', 3600)] });
      const errors: string[] = [];
      const lookups = new ZoneLookups({
        resolver: make(),
        store: memoryCache(),
        log: { error: (m) => errors.push(m) },
        settings: () => cfg.main,
        disabled: () => false,
      });
      const [res] = await lookups.all(ipLookups(cfg.zones, client));
      assert.equal(res?.outcome.status, 'listed');
      assert.deepEqual(errors, []);
    });

    it('a sender domain too long to ask with the zone appended is a skip at once, with its reason, and no query', async () => {
      const cfg = parseDnsblConfig({ main: { zones: 'dbl' }, dbl: { type: 'domain', zone: 'dbl.example.net', registered_domain: 'false' } });
      const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(50)}.example.com`; // 245 octets; 261 with the zone
      const errors: string[] = [];
      const lookups = new ZoneLookups({ resolver: make({ timeoutMs: 2000 }), store: memoryCache(), log: { error: (m) => errors.push(m) }, settings: () => cfg.main, disabled: () => false });
      const t0 = Date.now();
      const [res] = await lookups.all(domainLookups(cfg.zones, 'mail_from', long));
      assert.ok(Date.now() - t0 < 100, `took ${Date.now() - t0} ms`);
      assert.equal(res?.outcome.status, 'skip');
      assert.match(res?.outcome.status === 'skip' ? res.outcome.why : '', /^cannot be asked: the name is 261 octets, longer than 253/);
      assert.equal(dns.queries.length, 0);
      assert.deepEqual(errors, [], 'a name that cannot be asked is not a zone error');
    });
  });
});

function qn(g: packet.Packet): string {
  return g.questions?.[0]?.name ?? '';
}

function cname(name: string, target: string, ttl = 300): packet.Answer {
  return { type: 'CNAME', name, ttl, data: target } as packet.Answer;
}

function soa(owner: string, ttl: number): packet.Answer {
  return { type: 'SOA', name: owner, ttl, data: { mname: 'ns.example', rname: 'hostmaster.example', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: ttl } } as packet.Answer;
}

/** the part of the store the lookups use, in memory */
function memoryCache() {
  const m = new Map<string, string>();
  return {
    cacheGetMany: (keys: readonly string[]) => Promise.resolve(keys.map((k) => m.get(k) ?? null)),
    cacheSetMany: (items: ReadonlyArray<{ key: string; value: string; ttlSec: number }>) => {
      for (const i of items) m.set(i.key, i.value);
      return Promise.resolve();
    },
    incr: () => Promise.resolve(1),
  };
}
