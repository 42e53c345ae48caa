/**
 * npm run bench -- [--sessions N] [--concurrency C] [--dns-delay MS]
 *
 * Starts Haraka once per scenario (baseline without the suite, then with it), runs the same SMTP
 * workload against each (sessions from distinct 127.0.0.x sources announcing 198.18/15 clients via
 * PROXY; EHLO, MAIL, a local and a foreign RCPT, DATA with a few URLs, QUIT) and prints sessions/s,
 * p50/p99 session latency and DNS queries per session, with the ratio to the baseline.
 * To measure a new plugin, add a scenario below.
 */
import { DnsFixture, type ZoneEntry } from '../test/helpers/dns-server';
import { startHaraka, type HarakaOptions } from '../test/helpers/haraka';
import { spawn } from 'node:child_process';
import { SmtpClient } from '../test/helpers/smtp';
import { SlowProxy } from '../test/helpers/slow-proxy';
import { domainEntries, ipEntries } from './lists-data';

interface Scenario {
  name: string;
  opts: Omit<HarakaOptions, 'dns'>;
  /** run the workload a second time on the same node and report it as the warm-cache row */
  warm?: boolean;
  /** reach Redis through a proxy that delays each direction by this many ms (--redis-delay) */
  redisDelay?: boolean;
}

const SUITE_FILES = {
  'shield.relay.ini': '[main]\ndomains = example.com\n',
  'shield.limit.ini': '[concurrency]\nconc_ip = 10\nconc_net = 1000\nconc_total = 10000\n\n[rates]\nconn_ip = 600/1m\nmsg_ip = 600/1m\nrcpt_ip = 6000/1m\n',
  'shield.dnsbl.ini': `[main]\nzones = z1, z2\nhealth_interval = 0\n${[1, 2].map((i) => `\n[z${i}]\nzone = z${i}.bench.example.net\n`).join('')}`,
};
const SUITE_PLUGINS = ['shield.relay', 'shield.blocklist', 'shield.limit', 'shield.dnsbl', 'queue/discard'];

const SCENARIOS: Scenario[] = [
  {
    name: 'baseline (no shield)',
    opts: { plugins: ['bench.rdns', 'rcpt_to.in_host_list', 'queue/discard'], files: { host_list: 'example.com\n' } },
  },
  {
    name: 'shield.relay',
    opts: { plugins: ['shield.relay', 'queue/discard'], files: { 'shield.relay.ini': '[main]\ndomains = example.com\n' } },
  },
  {
    name: 'shield.relay + shield.rdns',
    opts: { plugins: ['shield.relay', 'shield.rdns', 'queue/discard'], files: { 'shield.relay.ini': '[main]\ndomains = example.com\n' } },
    warm: true,
  },
  {
    name: 'shield.relay + shield.dnsbl (6 zones)',
    opts: {
      plugins: ['shield.relay', 'shield.dnsbl', 'queue/discard'],
      files: {
        'shield.relay.ini': '[main]\ndomains = example.com\n',
        'shield.dnsbl.ini': `[main]\nzones = z1, z2, z3, z4, z5, z6\nhealth_interval = 0\n${[1, 2, 3, 4, 5, 6].map((i) => `\n[z${i}]\nzone = z${i}.bench.example.net\n`).join('')}`,
      },
    },
    warm: true,
  },
  {
    name: 'shield.relay + shield.limit (limits on, none hit)',
    opts: {
      plugins: ['shield.relay', 'shield.limit', 'queue/discard'],
      files: {
        'shield.relay.ini': '[main]\ndomains = example.com\n',
        'shield.limit.ini': '[concurrency]\nconc_ip = 10\nconc_net = 1000\nconc_total = 10000\n\n[rates]\nconn_ip = 600/1m\ndaily_ip = 10000/1d\nmsg_ip = 600/1m\nmsg_sender_domain = 100000/1h\nrcpt_ip = 6000/1m\n',
      },
    },
  },
  {
    name: 'shield.relay + shield.blocklist (100k IP + 100k domain entries)',
    opts: {
      plugins: ['shield.relay', 'shield.blocklist', 'queue/discard'],
      files: {
        'shield.relay.ini': '[main]\ndomains = example.com\n',
        // none of them matches the workload's clients, HELO or senders: every check is a full miss
        'shield.blocklist.block': `${[...ipEntries(100_000), ...domainEntries(100_000)].join('\n')}\nsender:bulk.example.net\n`,
      },
    },
  },
  {
    name: 'suite (relay+blocklist+limit+dnsbl 2 zones), Redis direct',
    opts: { plugins: SUITE_PLUGINS, files: SUITE_FILES },
    warm: true,
  },
  {
    name: 'suite (relay+blocklist+limit+dnsbl 2 zones), Redis delayed',
    opts: { plugins: SUITE_PLUGINS, files: SUITE_FILES },
    warm: true,
    redisDelay: true,
  },
];

const MESSAGE = [
  'From: sender@example.org',
  'To: rcpt@example.com',
  'Subject: bench',
  '',
  'See https://www.example.net/a and http://shop.example.org/b?x=1',
  'or https://example.com/c.',
  '',
].join('\r\n');

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

/** the client address of session n (198.18.0.0/15) and its host name: PTR and A in the DNS fixture */
function clientIp(n: number): string {
  return `198.18.${(n >> 8) & 255}.${n & 255}`;
}
function clientName(n: number): string {
  return `c${n}.bench.example.com`;
}

/** forward-confirmed rDNS for every client address the bench uses */
function benchZones(sessions: number): Record<string, ZoneEntry> {
  const zones: Record<string, ZoneEntry> = {};
  for (const n of [...Array.from({ length: sessions }, (_, i) => i), ...Array.from({ length: 20 }, (_, i) => 60000 + i)]) {
    const ip = clientIp(n);
    zones[`${ip.split('.').reverse().join('.')}.in-addr.arpa`] = { PTR: [clientName(n)], ttl: 3600 };
    zones[clientName(n)] = { A: [ip], ttl: 3600 };
  }
  return zones;
}

async function oneSession(port: number, n: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  const c = await SmtpClient.connect({ port, localAddress: `127.0.0.${2 + (n % 240)}`, proxyFrom: clientIp(n) });
  try {
    if (c.greeting.code !== 220) throw new Error(c.greeting.text);
    await c.cmd(`EHLO ${clientName(n)}`);
    await c.cmd('MAIL FROM:<sender@example.org>');
    const ok = await c.cmd('RCPT TO:<rcpt@example.com>');
    if (ok.code !== 250) throw new Error(`local rcpt: ${ok.text}`);
    await c.cmd('RCPT TO:<victim@other.example>');
    const d = await c.data(MESSAGE);
    if (d.code !== 250) throw new Error(`data: ${d.text}`);
  } finally {
    await c.quit();
  }
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

interface Row {
  name: string;
  rate: number;
  p50: number;
  p99: number;
  dnsPerSession: number;
  redisPerSession: number;
}

/**
 * Count the requests clients send to the Redis on 127.0.0.1:6379 while it runs (MONITOR): one per
 * round trip; the commands a Lua script runs inside Redis are not requests and are not counted.
 */
function redisMonitor(): { stop(): Promise<number> } {
  let n = 0;
  let buf = '';
  const child = spawn('redis-cli', ['monitor'], { stdio: ['ignore', 'pipe', 'ignore'] });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) if (/\[\d+ [\d.:]+\] "/.test(l) && !/\] "(info|monitor|ping)"/i.test(l)) n++;
  });
  child.on('error', () => (n = NaN));
  return {
    stop: () =>
      new Promise((resolve) => {
        setTimeout(() => {
          child.kill();
          resolve(n);
        }, 200);
      }),
  };
}

async function measure(name: string, port: number, dns: DnsFixture, sessions: number, concurrency: number): Promise<Row> {
  dns.queries = [];
  const monitor = redisMonitor();
  await new Promise((r) => setTimeout(r, 200));
  const lat: number[] = [];
  let next = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < sessions) lat.push(await oneSession(port, next++));
    }),
  );
  const secs = (Date.now() - t0) / 1000;
  const redisRequests = await monitor.stop();
  lat.sort((a, b) => a - b);
  return { name, rate: sessions / secs, p50: pct(lat, 50), p99: pct(lat, 99), dnsPerSession: dns.queries.length / sessions, redisPerSession: redisRequests / sessions };
}

async function run(s: Scenario, dns: DnsFixture, sessions: number, concurrency: number, redisDelay: number): Promise<Row[]> {
  const proxy = s.redisDelay ? await SlowProxy.start(6379) : null;
  if (proxy) proxy.delayMs = redisDelay;
  const h = await startHaraka({ ...s.opts, dns: dns.address, env: { BENCH_DNS: dns.address }, ...(proxy ? { redisPort: proxy.port } : {}) });
  try {
    // warm-up: connections, JIT, caches of the process (not the DNS answers of the measured run)
    for (let i = 0; i < 20; i++) await oneSession(h.port, 60000 + i);
    const rows = [await measure(s.warm ? `${s.name} (cold cache)` : s.name, h.port, dns, sessions, concurrency)];
    // the same clients again: every answer is in the node's DNS cache
    if (s.warm) rows.push(await measure(`${s.name} (warm cache)`, h.port, dns, sessions, concurrency));
    return rows;
  } finally {
    await h.stop();
    await proxy?.close();
  }
}

async function main(): Promise<void> {
  const sessions = arg('sessions', 500);
  const concurrency = arg('concurrency', 20);
  const delay = arg('dns-delay', 20);
  const redisDelay = arg('redis-delay', 5);
  const dns = await DnsFixture.start(benchZones(sessions), { delayMs: delay });
  console.log(`workload: ${sessions} sessions, concurrency ${concurrency}, DNS fixture delay ${delay} ms, Redis delay ${redisDelay} ms (delayed rows)`);
  const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
  const rows = [];
  for (const s of SCENARIOS) if (!only || s === SCENARIOS[0] || s.name.includes(only)) rows.push(...(await run(s, dns, sessions, concurrency, redisDelay)));
  await dns.close();
  const base = rows[0];
  const pad = (v: string, n: number) => v.padStart(n);
  console.log(`\n${'scenario'.padEnd(66)}${pad('sessions/s', 12)}${pad('p50 ms', 10)}${pad('p99 ms', 10)}${pad('DNS q/sess', 12)}${pad('Redis rt/sess', 15)}${pad('vs base', 10)}`);
  for (const r of rows) {
    console.log(
      `${r.name.slice(0, 65).padEnd(66)}${pad(r.rate.toFixed(1), 12)}${pad(r.p50.toFixed(1), 10)}${pad(r.p99.toFixed(1), 10)}${pad(r.dnsPerSession.toFixed(2), 12)}${pad(r.redisPerSession.toFixed(2), 15)}${pad(base ? (r.rate / base.rate).toFixed(2) : '-', 10)}`,
    );
  }  for (const kind of ['cold cache', 'warm cache']) {
    const direct = rows.find((r) => r.name.includes('Redis direct') && r.name.includes(kind));
    const slow = rows.find((r) => r.name.includes('Redis delayed') && r.name.includes(kind));
    if (direct && slow) console.log(`Redis +${redisDelay} ms each way (${kind}): ${((slow.rate / direct.rate) * 100).toFixed(0)}% of the sessions/s with Redis direct`);
  }

}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
