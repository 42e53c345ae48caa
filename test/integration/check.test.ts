/**
 * `haraka-shield check`: every problem of an instance's shield config at once, as the plugins would
 * read it; exit 1 on any error. What check accepts, a real Haraka starts with; what it calls an error
 * at start, Haraka refuses too.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli';
import { startHaraka } from '../helpers/haraka';

function instance(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shield-check-'));
  fs.mkdirSync(path.join(dir, 'config'));
  for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'config', n), c);
  return dir;
}

interface Report {
  ok: boolean;
  errors: number;
  warnings: number;
  findings: Array<{ level: string; where: string; message: string }>;
}

async function check(dir: string): Promise<{ code: number; text: string; report: Report }> {
  const text = await runCli(['check', '--config', dir]);
  const json = await runCli(['check', '--config', dir, '--json']);
  assert.equal(json.code, text.code);
  return { code: text.code, text: text.stdout, report: JSON.parse(json.stdout) as Report };
}

describe('haraka-shield check', function () {
  this.timeout(30000);

  it('reports every error and warning at once, each with file, section and key, and exits 1', async () => {
    const dir = instance({
      plugins: 'shield.relay\nshield.blocklist\nshield.limit\nshield.dnsbl\nshield.nope\nrelay\naccess\n',
      'shield.ini': '[hooks]\nbudget = 45s\n[dsn]\nnameservers = 127.0.0.1\n',
      'shield.relay.ini': '[main]\nnetworks = 127.0.0.7 ; 127.0.0.80/28\nnetwork = 10.0.0.0/8\ndomains = example.com\n',
      'shield.relay.networks': '0.0.0.0/0\n10.0.0.0/8\n10.9.0.0/16\n',
      'shield.blocklist.block': '300.1.2.3\n198.51.100.7 203.0.113.9\nspam.example.net fine reason\n',
      'shield.limit.ini': '[concurrency]\nconc_ip = off\n[rates]\nconn_ip = 30/minute\n',
      'shield.dnsbl.ini': '[main]\nzones = zen\n[zen]\nzone = zen.spamhaus.org\n',
    });
    const { code, text, report } = await check(dir);
    assert.equal(code, 1, text);
    const lines = text.split('\n');
    const has = (re: RegExp) => assert.ok(lines.some((l) => re.test(l)), `${re} in\n${text}`);
    has(/^error {3}config\/plugins: shield\.nope is not a shield plugin/);
    has(/^warning config\/plugins: relay is replaced by shield\.relay/);
    has(/^warning config\/plugins: access is replaced by shield\.blocklist/);
    has(/^error {3}shield\.ini \[dsn\]: unknown section/);
    has(/^warning shield\.ini \[hooks\] budget: 45s is not below Haraka's timeout of shield\.relay \(30s\)/);
    has(/^error {3}shield\.relay\.ini \[main\] networks: "127\.0\.0\.7 ; 127\.0\.0\.80\/28": a value may not contain ";" or "#"/);
    has(/^error {3}shield\.relay\.ini \[main\] network: unknown key .*; did you mean networks\?$/);
    has(/^error {3}shield\.relay\.networks line 1: 0\.0\.0\.0\/0 makes every IPv4 address a relay client: an open relay$/);
    has(/^warning shield\.relay\.networks line 3: 10\.9\.0\.0\/16 is already covered by 0\.0\.0\.0\/0 \(shield\.relay\.networks line 1\)/);
    has(/^error {3}shield\.blocklist\.block line 1: "300\.1\.2\.3" is not a valid IP address or CIDR range \(Haraka skips this line\)$/);
    has(/^error {3}shield\.blocklist\.block line 2: "203\.0\.113\.9" after the entry looks like another entry/);
    has(/^error {3}shield\.limit\.ini \[rates\] conn_ip: "30\/minute" is not a rate: the window after "\/" is a duration/);
    has(/^warning shield\.ini \[dns\] nameservers: empty: the zones zen \(Spamhaus\) are asked through the system resolver/);
    assert.doesNotMatch(text, /conc_ip/, '"off" is a good value');
    assert.doesNotMatch(text, /spam\.example\.net/, 'a line with a reason in words is fine');
    assert.match(lines.filter(Boolean).at(-1) ?? '', /^8 errors, \d+ warnings in \d+ files$/);
    assert.equal(report.ok, false);
    assert.equal(report.errors, 8);
    assert.doesNotMatch(text, /could not be read/, 'a broken shield file is reported once, as itself');
    assert.ok(report.findings.every((f) => f.where && f.message && ['error', 'warning'].includes(f.level)));
  });

  it('a clean instance: exit 0; and a real Haraka starts with what check accepted', async () => {
    const files = {
      'shield.relay.ini': '[main]\nnetworks = 198.18.0.0/16\ndomains = example.com\n',
      'shield.relay.domains': '# ours\nexample.net\n',
      'shield.blocklist.block': 'spam.example.org seen in a run\n',
      'shield.limit.ini': '[concurrency]\nconc_ip = off\n',
    };
    const dir = instance({ plugins: 'shield.relay\nshield.blocklist\nshield.limit\n', 'shield.ini': '[dns]\nnameservers = 127.0.0.1:9\n', ...files });
    const { code, text, report } = await check(dir);
    assert.equal(code, 0, text);
    assert.match(text, /^ok: \d+ files checked, no problems$/m);
    assert.equal(report.ok, true);
    const haraka = await startHaraka({ plugins: ['shield.relay', 'shield.blocklist', 'shield.limit', 'queue/discard'], files });
    try {
      assert.doesNotMatch(haraka.output, /config error|line skipped/);
    } finally {
      await haraka.stop();
    }
  });

  it('an instance with a stock setup (host_list) is told to import it, not left to refuse its own domain', async () => {
    const dir = instance({ plugins: 'shield.relay\n', host_list: 'ours.example\n', 'shield.relay.ini': '[main]\ndomains = example.com\n' });
    const { code, text } = await check(dir);
    assert.equal(code, 0, text);
    assert.match(text, /^warning config\/host_list: Haraka's stock config has entries the shield files do not carry yet \(shield\.relay\.domains\): run haraka-shield import stock/m);
  });

  it('what check calls an error at start, Haraka refuses too', async () => {
    const bad = { 'shield.limit.ini': '[rates]\nconn_ip = 30/minute\n' };
    const { code } = await check(instance({ plugins: 'shield.limit\n', ...bad }));
    assert.equal(code, 1);
    await assert.rejects(startHaraka({ plugins: ['shield.limit', 'queue/discard'], files: bad }), /shield\.limit: config error: shield\.limit\.ini \[rates\] conn_ip: "30\/minute" is not a rate/);
  });

  it('the config this repo ships (npm start, install) has no errors', async () => {
    const root = path.resolve(__dirname, '..', '..');
    const files: Record<string, string> = {};
    for (const f of fs.readdirSync(path.join(root, 'config'))) if (/^shield|^plugins$/.test(f)) files[f] = fs.readFileSync(path.join(root, 'config', f), 'utf8');
    const { code, report } = await check(instance(files));
    assert.equal(code, 0, JSON.stringify(report.findings, null, 2));
    assert.equal(report.errors, 0);
  });

  it('not an instance, or a bad argument: one line, exit 1', async () => {
    const r = await runCli(['check', '--config', '/nonexistent-dir']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^haraka-shield: \/nonexistent-dir is not a Haraka instance \(no config\/ directory\); use --config DIR\n$/);
    const r2 = await runCli(['check', '--frobnicate']);
    assert.equal(r2.code, 1);
    assert.equal(r2.stderr.split('\n').filter(Boolean).length, 1);
  });
});
