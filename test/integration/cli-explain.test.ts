/**
 * `haraka-shield explain` as an operator runs it: against the instance directory of a running Haraka
 * (same config, same DNS fixture, same Redis prefix), compared with what that Haraka answers a real
 * SMTP client announcing the same address.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, cli, runCli, type CliResult } from '../helpers/cli';
import { useHaraka } from '../helpers/env';
import { ROOT } from '../helpers/haraka';
import { assertReply, greet, nextSource, session } from '../helpers/smtp';

const GUARD = path.join(ROOT, 'test', 'setup', 'no-real-dns.js');
const PLUGINS = ['test.auth', 'shield.relay', 'shield.blocklist', 'shield.limit', 'shield.dnsbl', 'queue/discard'];
const RELAY_INI = '[main]\ndomains = example.com\nnetworks = 198.18.70.0/24\n';
const LIMIT_INI = '[rates]\nconn_ip = 2/1m\n';
const DNSBL_INI = `[main]
zones = bl, everything
threshold = 1
health_interval = 1s

[bl]
zone = bl.example.net
listed[] = 127.0.0.2 spam 1
lookup_url = https://lookup.example.net/?{item}

[everything]
zone = everything.example.net
`;
const ZONES = {
  '2.0.0.127.bl.example.net': { A: ['127.0.0.2'] },
  '2.71.18.198.bl.example.net': { A: ['127.0.0.2'] },
  // a zone that lists everything, its "never listed" test point included: the fleet disables it
  '1.0.0.127.everything.example.net': { A: ['127.0.0.2'] },
  '2.0.0.127.everything.example.net': { A: ['127.0.0.2'] },
  '3.71.18.198.everything.example.net': { A: ['127.0.0.2'] },
};

/** the haraka-shield CLI, or bin/explain.js itself until haraka-shield dispatches `explain` */
const DISPATCHED = fs.existsSync(CLI) && fs.readFileSync(CLI, 'utf8').includes('explainCommand');

function explainCli(args: string[]): Promise<CliResult> {
  // the real-DNS guard is preloaded into the CLI too: explain must only ever ask the fixture
  const env = { NODE_OPTIONS: `--require ${GUARD}` };
  if (DISPATCHED) return runCli(['explain', ...args], env);
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin', 'explain.js'), ...args], { env: { ...process.env, ...env }, timeout: 20000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

interface JsonReply {
  code: number;
  status: string | null;
  text: string;
  disconnect: boolean;
  by: string | null;
}
interface JsonStage {
  stage: string;
  arg: string | null;
  evidence: Array<{ check: string; outcome: string; reason: string; score?: number; data?: Record<string, unknown> }>;
  reply: JsonReply;
  heldBack: string[];
}
interface JsonReport {
  instance: string;
  mode: string;
  plugins: string[];
  notRun: string[];
  store: { backend: string; where: string | null; prefix: string; note: string | null };
  dns: string[];
  stages: JsonStage[];
  notReached: string[];
  outcome: string;
  summary: string;
  score: number;
}

function redisKeys(pattern: string): string[] {
  return execFileSync('redis-cli', ['--scan', '--pattern', pattern], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

describe('haraka-shield explain (CLI)', function () {
  this.timeout(30000);
  const env = useHaraka({
    plugins: PLUGINS,
    zones: ZONES,
    files: { 'shield.relay.ini': RELAY_INI, 'shield.limit.ini': LIMIT_INI, 'shield.dnsbl.ini': DNSBL_INI, 'shield.blocklist.block': '198.18.72.0/24 snowshoe run\n' },
  });
  before(() => env.haraka.waitFor(/dnsbl zone everything disabled/));

  const explain = async (args: string[]): Promise<JsonReport> => {
    const r = await explainCli(['--config', env.haraka.dir, '--json', ...args]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as JsonReport;
  };
  const stage = (rep: JsonReport, name: string, n = 0): JsonStage => {
    const s = rep.stages.filter((x) => x.stage === name)[n];
    assert.ok(s, `no ${name} stage in ${JSON.stringify(rep.stages.map((x) => x.stage))}`);
    return s;
  };
  const conn = (proxyFrom: string) => ({ port: env.haraka.port, localAddress: nextSource(), proxyFrom });

  it('a foreign recipient from an outside address: 550 5.7.1 named with the relay evidence, as Haraka answers', async () => {
    const rep = await explain(['--ip', '198.18.73.1', '--helo', 'mx.example.org', '--from', 'a@example.org', '--rcpt', 'victim@other.example']);
    const rcpt = stage(rep, 'rcpt');
    assert.equal(rcpt.reply.code, 550);
    assert.equal(rcpt.reply.status, '5.7.1');
    assert.match(rcpt.reply.text, /^Relaying denied: other\.example is not a domain this server accepts mail for, and 198\.18\.73\.1 may not relay/);
    assert.equal(rcpt.reply.by, 'shield.relay relay_rcpt');
    assert.deepEqual(
      rcpt.evidence.filter((e) => e.check === 'relay').map((e) => [e.outcome, e.reason, e.data?.domain]),
      [['fail', 'not_local', 'other.example']],
    );
    assert.equal(rep.outcome, 'refused');
    const real = await session({ ...conn('198.18.73.1'), helo: 'mx.example.org', from: 'a@example.org', rcpts: ['victim@other.example'] });
    assertReply(real.rcpts[0], rcpt.reply.code, rcpt.reply.status as string, 'the real Haraka');
  });

  it('the same from a relay network is accepted (relay_network at connect, no refusal)', async () => {
    const rep = await explain(['--ip', '198.18.70.5', '--helo', 'mx.example.org', '--from', 'a@example.org', '--rcpt', 'someone@other.example']);
    assert.deepEqual(
      stage(rep, 'connect').evidence.filter((e) => e.check === 'relay').map((e) => [e.outcome, e.reason]),
      [['pass', 'relay_network']],
    );
    const rcpt = stage(rep, 'rcpt');
    assert.equal(rcpt.reply.code, 250, rcpt.reply.text);
    assert.equal(rep.outcome, 'accepted');
    const real = await session({ ...conn('198.18.70.5'), from: 'a@example.org', rcpts: ['someone@other.example'] });
    assert.equal(real.rcpts[0]?.code, 250, real.rcpts[0]?.text);
  });

  it('a blocked address gets the block reply at connect and the later stages are not reached', async () => {
    const rep = await explain(['--ip', '198.18.72.9', '--helo', 'mx.example.org', '--from', 'a@example.org', '--rcpt', 'b@example.com']);
    const c = stage(rep, 'connect');
    assert.equal(c.reply.code, 554);
    assert.equal(c.reply.status, '5.7.1');
    assert.equal(c.reply.disconnect, true);
    assert.deepEqual(
      c.evidence.filter((e) => e.check === 'blocklist').map((e) => [e.outcome, e.reason]),
      [['fail', 'block_ip']],
    );
    assert.deepEqual(rep.notReached, ['ehlo mx.example.org', 'mail <a@example.org>', 'rcpt <b@example.com>']);
    assert.equal(rep.stages.length, 1);
    assertReply(await greet(env.haraka.port, '198.18.72.9'), 554, '5.7.1', 'the real Haraka');
  });

  it('an entry added with `haraka-shield block add` (shared through Redis) is seen as the server sees it', async () => {
    await cli(['block', 'add', '198.18.75.0/24', '--reason', 'seen in a run', '--config', env.haraka.dir]);
    const rep = await explain(['--ip', '198.18.75.4']);
    const c = stage(rep, 'connect');
    assert.equal(c.reply.code, 554, JSON.stringify(c));
    assert.equal(c.reply.status, '5.7.1');
    assert.ok(c.evidence.some((e) => e.check === 'blocklist' && e.reason === 'block_ip'), JSON.stringify(c.evidence));
    // the server takes it within sync_interval (1 s)
    await new Promise((r) => setTimeout(r, 1500));
    assertReply(await greet(env.haraka.port, '198.18.75.4'), 554, '5.7.1', 'the real Haraka');
  });

  it('a DNSBL-listed address gets the dnsbl reply at RCPT; a zone the fleet disabled lists nobody, as on the server', async () => {
    const rep = await explain(['--ip', '198.18.71.2', '--helo', 'mx.example.org', '--from', 'a@example.org', '--rcpt', 'b@example.com', '--rcpt', 'postmaster@example.com']);
    const [first, second] = [stage(rep, 'rcpt', 0), stage(rep, 'rcpt', 1)];
    assert.equal(first.reply.code, 550);
    assert.equal(first.reply.status, '5.7.1');
    assert.match(first.reply.text, /198\.18\.71\.2 is listed by bl \(spam\) https:\/\/lookup\.example\.net\/\?198\.18\.71\.2/);
    assert.ok(first.evidence.some((e) => e.check === 'dnsbl' && e.outcome === 'fail' && e.reason === 'listed'), JSON.stringify(first.evidence));
    assert.equal(second.reply.code, 250, `postmaster@ stays reachable: ${second.reply.text}`);
    assert.equal(rep.outcome, 'partly accepted');
    const real = await session({ ...conn('198.18.71.2'), from: 'a@example.org', rcpts: ['b@example.com', 'postmaster@example.com'] });
    assertReply(real.rcpts[0], first.reply.code, first.reply.status as string, 'the real Haraka');
    assert.equal(real.rcpts[1]?.code, 250);

    const everything = await explain(['--ip', '198.18.71.3', '--helo', 'mx.example.org', '--from', 'a@example.org', '--rcpt', 'b@example.com']);
    assert.equal(stage(everything, 'rcpt').reply.code, 250, JSON.stringify(stage(everything, 'rcpt')));
    const realEverything = await session({ ...conn('198.18.71.3'), from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.equal(realEverything.rcpts[0]?.code, 250);
  });

  it('explain uses up no rate: after any number of runs a real client still has its whole conn_ip budget; explain then shows the refusal', async () => {
    const ip = '198.18.74.1';
    for (let i = 0; i < 3; i++) assert.equal(stage(await explain(['--ip', ip]), 'connect').reply.code, 220, `explain run ${i + 1}`);
    // conn_ip = 2/1m: both real connections are admitted, so explain took nothing from the budget
    assert.equal((await greet(env.haraka.port, ip)).code, 220);
    assert.equal((await greet(env.haraka.port, ip)).code, 220);
    // and explain reads the fleet's real count: the next connection would be refused, and is
    const rep = await explain(['--ip', ip]);
    const c = stage(rep, 'connect');
    assert.equal(c.reply.code, 421);
    assert.equal(c.reply.status, '4.7.0');
    assert.match(c.reply.text, /conn_ip/);
    assert.ok(c.evidence.some((e) => e.check === 'limit' && e.reason === 'conn_ip'));
    assertReply(await greet(env.haraka.port, ip), 421, '4.7.0', 'the real Haraka');
    // explain's copies are gone
    assert.deepEqual(redisKeys(`${env.prefix}explain:*`), []);
  });

  it('--auth: a foreign recipient is accepted for an authenticated user; port 587 without AUTH is refused by Haraka itself', async () => {
    const rep = await explain(['--ip', '198.18.73.2', '--helo', 'laptop.example.org', '--auth', 'alice', '--from', 'alice@example.com', '--rcpt', 'friend@other.example']);
    assert.equal(stage(rep, 'auth').reply.code, 235);
    const rcpt = stage(rep, 'rcpt');
    assert.equal(rcpt.reply.code, 250, rcpt.reply.text);
    assert.ok(rcpt.evidence.some((e) => e.check === 'relay' && e.outcome === 'pass' && e.reason === 'authenticated'));
    const sub = await explain(['--ip', '198.18.73.3', '--port', '587', '--helo', 'laptop.example.org', '--from', 'alice@example.com', '--rcpt', 'friend@other.example']);
    assert.equal(stage(sub, 'mail').reply.code, 550);
    assert.match(stage(sub, 'mail').reply.text, /Authentication required/);
    const real = await session({ ...conn('198.18.73.3'), proxyPort: 587, helo: 'laptop.example.org', from: 'alice@example.com', rcpts: [] });
    assert.equal(real.mail.code, 550, real.mail.text);
  });

  it('--json is one object: instance, mode, plugins run and not run, store, dns, stages with evidence and reply, outcome, summary, score', async () => {
    const r = await explainCli(['--config', env.haraka.dir, '--json', '--ip', '2001:2::7', '--helo', 'mx.example.org', '--from', '<>', '--rcpt', 'b@example.com']);
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as JsonReport;
    assert.equal(rep.instance, env.haraka.dir);
    assert.equal(rep.mode, 'enforce');
    assert.deepEqual(rep.plugins, ['shield.relay', 'shield.blocklist', 'shield.limit', 'shield.dnsbl']);
    assert.deepEqual(rep.notRun, ['test.auth', 'queue/discard']);
    assert.deepEqual(rep.store, { backend: 'redis', where: 'redis://127.0.0.1:6379', prefix: env.prefix, note: null, withheld: [] });
    assert.deepEqual(rep.dns, [env.dns.address]);
    assert.deepEqual(rep.stages.map((s) => [s.stage, s.arg, s.reply.code]), [
      ['connect', null, 220],
      ['ehlo', 'mx.example.org', 250],
      ['mail', '<>', 250],
      ['rcpt', '<b@example.com>', 250],
    ]);
    for (const s of rep.stages) assert.deepEqual(Object.keys(s).sort(), ['arg', 'evidence', 'heldBack', 'log', 'reply', 'stage']);
    assert.deepEqual(Object.keys(rep.stages[3]?.reply ?? {}).sort(), ['by', 'code', 'disconnect', 'status', 'text']);
    assert.equal(rep.outcome, 'accepted');
    assert.match(rep.summary, /^shield summary ip=2001:2::7 .*relay=pass:local_domain/);
    assert.equal(typeof rep.score, 'number');
  });

  it('text output names each stage, its evidence and its reply', async () => {
    const r = await explainCli(['--config', env.haraka.dir, '--ip', '198.18.73.4', '--helo', 'mx.example.org', '--from', 'a@example.org', '--rcpt', 'x@other.example']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^mode: enforce$/m);
    assert.match(r.stdout, /^plugins: shield\.relay, shield\.blocklist, shield\.limit, shield\.dnsbl; not run: test\.auth, queue\/discard$/m);
    assert.match(r.stdout, /^rcpt <x@other\.example>\n {2}relay +fail not_local .*\n(?:.*\n)* {2}-> 550 5\.7\.1 Relaying denied: /m);
    assert.match(r.stdout, /^outcome: refused$/m);
    assert.match(r.stdout, /^summary: shield summary ip=198\.18\.73\.4 /m);
  });

  for (const [args, msg] of [
    [['--ip', '1.2.3'], /^haraka-shield: explain: --ip "1\.2\.3" is not an IPv4 or IPv6 address\n$/],
    [['--ip', '198.18.0.300'], /^haraka-shield: explain: --ip "198\.18\.0\.300" is not an IPv4 or IPv6 address\n$/],
    [[], /^haraka-shield: explain: --ip is required/],
    [['--ip', '198.18.0.1', '--rcpt', 'b@example.com'], /^haraka-shield: explain: --rcpt needs --from/],
    [['--ip', '198.18.0.1', '--helo', 'x.example.org', '--from', 'a@'], /^haraka-shield: explain: --from "a@": /],
    [['--ip', '198.18.0.1', '--port', '99999'], /^haraka-shield: explain: --port "99999" is not a port number\n$/],
    [['--ip', '198.18.0.1', '--bogus'], /^haraka-shield: explain: unknown option '--bogus'\n$/],
  ] as Array<[string[], RegExp]>) {
    it(`refuses ${args.join(' ') || 'no arguments'} with one line, exit 1`, async () => {
      const r = await explainCli(['--config', env.haraka.dir, ...args]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, msg);
      assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
      assert.equal(r.stdout, '');
    });
  }

  it('Redis down: the run uses this process\'s memory and says so; dry run shows what it held back', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shield-explain-'));
    fs.cpSync(path.join(env.haraka.dir, 'config'), path.join(dir, 'config'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'config', 'redis.ini'), '[server]\nhost = 127.0.0.1\nport = 1\n');
    fs.appendFileSync(path.join(dir, 'config', 'shield.ini'), '\n[main]\nmode = dryrun\n');
    const r = await explainCli(['--config', dir, '--json', '--ip', '198.18.72.10', '--helo', 'mx.example.org', '--from', 'a@example.org', '--rcpt', 'x@other.example']);
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as JsonReport;
    assert.equal(rep.store.backend, 'memory');
    assert.match(rep.store.note ?? '', /^Redis at redis:\/\/127\.0\.0\.1:1 unavailable \(.*\): this run used its own memory/);
    assert.equal(rep.mode, 'dryrun');
    // the block is held back in dry run; relay control still refuses
    const c = stage(rep, 'connect');
    assert.equal(c.reply.code, 220);
    assert.deepEqual(c.heldBack.map((h) => h.slice(0, 9)), ['554 5.7.1']);
    assert.equal(stage(rep, 'rcpt').reply.code, 550);
  });
});
