/** `haraka-shield block|allow ...` as a user runs it: against an instance directory and Redis. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, cli } from '../helpers/cli';
import { uniquePrefix } from '../helpers/haraka';

function instance(shieldIni: string, files: Record<string, string> = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shield-cli-'));
  fs.mkdirSync(path.join(dir, 'config'));
  fs.writeFileSync(path.join(dir, 'config', 'shield.ini'), shieldIni);
  for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'config', n), c);
  return dir;
}

function redisKeys(prefix: string): string[] {
  return execFileSync('redis-cli', ['--scan', '--pattern', `${prefix}*`], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

describe('haraka-shield block / allow (CLI)', function () {
  this.timeout(20000);
  const prefix = uniquePrefix();
  const dir = instance(`[store]\nprefix = ${prefix}\n`, { 'shield.blocklist.block': '198.51.100.0/24 from the file\n', 'shield.blocklist.ini': '[main]\nshow_reason = true\n' });
  const at = ['--config', dir];

  for (const [args, msg] of [
    [['block', 'add', '198.51.100.5/24'], /^haraka-shield: "198\.51\.100\.5\/24" has host bits set; did you mean 198\.51\.100\.0\/24\?\n$/],
    [['block', 'add', '10.1.2.3/33'], /^haraka-shield: "10\.1\.2\.3\/33": prefix length must be 0\.\.32\n$/],
    [['block', 'add', 'bad_name!'], /^haraka-shield: "bad_name!" is not a host or domain name\n$/],
    [['block', 'add', '192.0.2.1', '--kind', 'domain'], /^haraka-shield: "192\.0\.2\.1" is an IP address; use an ip entry\n$/],
    [['block', 'add', '192.0.2.1', '--ttl', '5x'], /^haraka-shield: --ttl: "5x" is not a duration[^\n]*\(e\.g\. [^\n]*30s, 5m, 2h, 7d\)[^\n]*\n$/],
    [['block', 'add', '198.51.100.7', '--ttl', '-5s'], /^haraka-shield: --ttl -5s: must be a positive duration \(30m, 12h, 7d\)\n$/],
    [['block', 'add', '198.51.100.7', '--ttl=-5s'], /^haraka-shield: --ttl -5s: must be a positive duration \(30m, 12h, 7d\)\n$/],
    [['block', 'add', '198.51.100.7', '--ttl', '0'], /^haraka-shield: --ttl 0: must be a positive duration \(30m, 12h, 7d\)\n$/],
    [['block', 'add', '198.51.100.7', '--ttl', '0.5s'], /^haraka-shield: --ttl 0\.5s: must be at least 1s\n$/],
    [['block', 'add', '198.51.100.7', '--ttl'], /^haraka-shield: --ttl needs a value\n$/],
    [['block', 'add', '198.51.100.7', '--ttl', '--json'], /^haraka-shield: --ttl needs a value\n$/],
    [['block', 'add', '198.51.100.7', '--tll', '5m'], /^haraka-shield: unknown option --tll \(options: --config, --kind, --ttl, [^\n]*\)\n$/],
    [['block', 'add', '198.51.100.7', '-t', '5m'], /^haraka-shield: unknown option -t \(options: [^\n]*\)\n$/],
    [['block', 'list', '--json=yes'], /^haraka-shield: --json takes no value \(got --json=yes\)\n$/],
    [['block', 'add', '10.0.0'], /^haraka-shield: "10\.0\.0" is not a valid IP address or CIDR range\n$/],
    [['block', 'add', '300.1.2.3'], /^haraka-shield: "300\.1\.2\.3" is not a valid IP address or CIDR range\n$/],
    [['block', 'add', 'localhost'], /^haraka-shield: "localhost" is a single label[^\n]*\n$/],
    [['block', 'add', 'rcpt:someone@example.com', '--kind', 'sender'], /^haraka-shield: "rcpt:someone@example\.com": the prefix rcpt: and the kind sender disagree\n$/],
    [['block', 'add', 'rcpt:', '198.51.100.7'], /^haraka-shield: [^\n]+\n$/],
    [['block', 'add', 'host:spam.example.net'], /^haraka-shield: [^\n]+\n$/],
    [['block', 'remove', '198.51.100.7', '--ttl', '5m'], /^haraka-shield: block remove: --ttl is for add\n$/],
    [['block', 'add', '192.0.2.1', '--kind', 'host'], /^haraka-shield: --kind host: must be one of ip, domain, sender, rcpt\n$/],
    [['block', 'add', '192.0.2.1', 'user@'], /^haraka-shield: "user@" is not an email address\n$/],
    [['block', 'add', '198.51.100.12', '--ttl', '99999999w'], /^haraka-shield: --ttl 99999999w: at most 10 years \(520w\); leave --ttl out for an entry that never expires\n$/],
    [['block', 'frobnicate'], /^haraka-shield: block: unknown subcommand frobnicate/],
  ] as Array<[string[], RegExp]>) {
    it(`refuses ${args.slice(1).join(' ')} with one line, exit 1, nothing written`, async () => {
      const r = await runCli([...args, ...at]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, msg);
      assert.equal(r.stdout, '');
      assert.deepEqual(redisKeys(prefix), []);
    });
  }

  it('adds, lists (table and JSON), tests and removes entries', async () => {
    assert.match(await cli(['block', 'add', '203.0.113.0/24', 'Spam.Example.NET.', '--ttl', '2h', '--reason', 'seen in a run', ...at]), /added block ip 203\.0\.113\.0\/24 \(expires \S+\) in redis:\/\/127\.0\.0\.1:6379 prefix/);
    await cli(['allow', 'add', '203.0.113.7', ...at]);
    await cli(['block', 'add', 'old@example.com', '--kind', 'rcpt', '--source', 'ticket-42', ...at]);
    // the kind written as the files write it: a recipient entry, not a sender "rcpt:someone@..."
    assert.match(await cli(['block', 'add', 'rcpt:Someone@example.com', '--reason', '-x- marks it', ...at]), /^added block rcpt someone@example\.com in /);
    assert.match(await cli(['block', 'add', 'sender:bulk.example.org', '--kind', 'sender', ...at]), /^added block sender bulk\.example\.org in /);
    const table = await cli(['block', 'list', ...at]);
    assert.match(table, /^KIND +ENTRY +EXPIRES +SOURCE +REASON$/m);
    assert.match(table, /^domain +spam\.example\.net +\S+Z +cli:\S+ +seen in a run$/m);
    assert.match(table, /^ip +198\.51\.100\.0\/24 +never +shield\.blocklist\.block:1 +from the file$/m);
    assert.match(table, /^rcpt +old@example\.com +never +ticket-42 *$/m);
    assert.match(table, /^rcpt +someone@example\.com +never +cli:\S+ +-x- marks it$/m);
    assert.match(table, /^sender +bulk\.example\.org +never /m);
    assert.doesNotMatch(table, /rcpt:/);
    const json = JSON.parse(await cli(['block', 'list', '--kind', 'ip', '--json', ...at])) as Array<{ value: string; expiresAt: string | null; reason: string }>;
    assert.deepEqual(json.map((e) => e.value).sort(), ['198.51.100.0/24', '203.0.113.0/24']);
    const exp = Date.parse(json.find((e) => e.value === '203.0.113.0/24')?.expiresAt ?? '');
    assert.ok(Math.abs(exp - (Date.now() + 2 * 3600_000)) < 60_000, 'expires in 2h');
    assert.match(await cli(['allow', 'list', ...at]), /^ip +203\.0\.113\.7\/32 +never/m);

    const blocked = await cli(['block', 'test', '203.0.113.9', '--rcpt', 'OLD@example.com', ...at]);
    assert.match(blocked, /^client 203\.0\.113\.9: block by ip 203\.0\.113\.9: block ip 203\.0\.113\.0\/24 \(cli:\S+, "seen in a run", expires \S+\)$/m);
    assert.match(blocked, /^ {2}reply at connect: 554 5\.7\.1 Connection refused: your address 203\.0\.113\.9 is on this server's local blocklist \(seen in a run\)$/m);
    assert.match(blocked, /^ {2}reply at RCPT: 550 5\.7\.1 Recipient old@example\.com is on this server's local blocklist$/m);
    assert.match(await cli(['block', 'test', '203.0.113.7', ...at]), /^client 203\.0\.113\.7: allow by ip/m);
    assert.match(await cli(['block', 'test', '192.0.2.1', '--helo', 'mx.spam.example.net', ...at]), /reply at helo: 550 5\.7\.1 the HELO name mx\.spam\.example\.net is on this server's local blocklist/);
    assert.match(await cli(['block', 'test', '192.0.2.1', ...at]), /^client 192\.0\.2\.1: no client entry matches$/m);

    assert.match(await cli(['block', 'remove', '203.0.113.0/24', ...at]), /^removed block ip 203\.0\.113\.0\/24/);
    const gone = await runCli(['block', 'remove', '198.51.100.0/24', ...at]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /is not in the shared store; it comes from config\/shield\.blocklist\.block line 1: edit that file/);
  });

  it('with the memory backend, refuses to write (Haraka could not see it) but lists the files', async () => {
    const mem = instance('[store]\nbackend = memory\n', { 'shield.blocklist.block': '192.0.2.0/24\n' });
    const r = await runCli(['block', 'add', '192.0.2.99', '--config', mem]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /backend = memory: .*config\/shield\.blocklist\.block/);
    assert.match(await cli(['block', 'list', '--config', mem]), /^ip +192\.0\.2\.0\/24 +never +shield\.blocklist\.block:1/m);
  });

  it('names the file, section and key of a bad shield.ini', async () => {
    const bad = instance('[store]\nbackend = postgres\n');
    const r = await runCli(['block', 'list', '--config', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /shield\.ini \[store\] backend/);
  });

  it('answers an unknown command with one line, exit 1', async () => {
    const r = await runCli(['blok', 'add', '192.0.2.1']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'haraka-shield: unknown command blok (commands: install, check, config, import, block, allow, explain; haraka-shield --help)\n');
    assert.equal(r.stdout, '');
  });

  it('prints help with --help (exit 0) and usage without a subcommand (exit 2)', async () => {
    const h = await runCli(['block', '--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /haraka-shield block add ENTRY\.\.\. \[--kind KIND\] \[--ttl DURATION\]/);
    assert.equal((await runCli(['block'])).code, 2);
  });

  after(() => {
    const keys = redisKeys(prefix);
    if (keys.length) execFileSync('redis-cli', ['del', ...keys]);
  });
});
