/**
 * `haraka-shield import stock`: an instance set up for Haraka's stock relay / access plugins keeps
 * its domains, relay networks and lists when it moves to the shield plugins. The plan is computed
 * from file contents (planStockImport); the command prints diffs, writes with --write, never drops
 * what a shield file has and proposes nothing the second time; a real Haraka accepts a host_list
 * domain after install + import.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CliError } from '../../bin/args';
import { enabledPlugins, planStockImport, stockConflictLines, stockConflicts, unifiedDiff, type ReadConfig } from '../../bin/import-stock';
import { DnsFixture } from '../helpers/dns-server';
import { ROOT, startHaraka, type HarakaProcess } from '../helpers/haraka';
import { runCli, cli } from '../helpers/cli';
import { session } from '../helpers/smtp';

function reader(files: Record<string, string>): ReadConfig {
  return (name) => (Object.prototype.hasOwnProperty.call(files, name) ? (files[name] as string) : null);
}

/** apply a plan's changes to the files, as --write does */
function applied(files: Record<string, string>): Record<string, string> {
  const out = { ...files };
  for (const c of planStockImport(reader(files)).changes) out[c.file] = c.after;
  return out;
}

function instance(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shield-import-'));
  fs.mkdirSync(path.join(dir, 'config'));
  for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'config', n), c);
  return dir;
}

function activeLines(text: string | undefined): string[] {
  return (text ?? '').split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean);
}

describe('haraka-shield import stock: the plan', () => {
  it('carries host_list domains into shield.relay.domains (IDN, case, final dot, CRLF, comments)', () => {
    const files = { plugins: 'rcpt_to.in_host_list\n', host_list: '# ours\r\nMail.Example.ORG.\r\n\r\n  bücher.example  \r\n; old\r\nexample.net\n' };
    const plan = planStockImport(reader(files));
    assert.deepEqual(plan.changes.map((c) => c.file), ['shield.relay.domains']);
    const c = plan.changes[0]!;
    assert.equal(c.before, null);
    assert.deepEqual(activeLines(c.after), ['mail.example.org', 'xn--bcher-kva.example', 'example.net']);
    assert.equal(c.added[0], '# imported from config/host_list by haraka-shield import stock');
    assert.deepEqual(plan.notes, []);
    assert.deepEqual(plan.sources, ['host_list']);
  });

  it('keeps what the shield files have, adds only what they lack, and proposes nothing the second time', () => {
    const files = {
      plugins: 'relay\naccess\n',
      host_list: 'example.org\nexample.net\n',
      'shield.relay.domains': '# mine\nEXAMPLE.org # the old one\nlocal.example.com',
      'shield.relay.ini': '[main]\ndomains = example.net\nnetworks = 192.0.2.0/24\n',
      relay_acl_allow: '192.0.2.0/24\n198.51.100.0/25\n',
      'mail_from.access.blacklist': 'bad@example.com\n',
      'shield.blocklist.block': 'sender:Bad@Example.com already here\n',
      'rcpt_to.access.blacklist': 'gone@example.com\n',
    };
    const plan = planStockImport(reader(files));
    const byFile = Object.fromEntries(plan.changes.map((c) => [c.file, c]));
    // nothing to add to the domains: example.org is in the file, example.net in the ini
    assert.equal(byFile['shield.relay.domains'], undefined);
    assert.deepEqual(activeLines(byFile['shield.relay.networks']?.after), ['198.51.100.0/25']);
    const block = byFile['shield.blocklist.block']!;
    assert.ok(block.after.startsWith('sender:Bad@Example.com already here\n'), 'the file\'s lines stay as they were');
    assert.deepEqual(block.added, ['# imported from config/rcpt_to.access.blacklist by haraka-shield import stock', 'rcpt:gone@example.com stock rcpt_to.access.blacklist']);
    // a file without a final newline gets one before the additions
    const once = applied(files);
    assert.deepEqual(planStockImport(reader(once)).changes, []);
    for (const [name, text] of Object.entries(files)) assert.ok((once[name] as string).startsWith(text), name);
  });

  it('converts the access plugin\'s lists to kind: entries, and says what it cannot convert', () => {
    const files = {
      plugins: '# CONNECT\naccess\nharaka-plugin-relay\n',
      'connect.rdns_access.whitelist': '192.0.2.10\nmail.partner.example.com\n',
      'connect.rdns_access.blacklist': '198.51.100.66\nspam.example.net\nuser@example.net\n300.1.2.3\n',
      'connect.rdns_access.blacklist_regex': '.*\\.dynamic\\.example\\.net\n',
      'mail_from.access.whitelist': 'boss@example.com\n',
      'mail_from.access.blacklist': 'spammer@example.net\nexample.org\n',
      'rcpt_to.access.whitelist': 'postmaster@example.com\n',
      'rcpt_to.access.blacklist': 'old@example.com\n',
      'access.domains': 'spam-central.example.com\n!friend@spam-central.example.com\n!ok.spam-central.example.com\n',
    };
    const plan = planStockImport(reader(files));
    const byFile = Object.fromEntries(plan.changes.map((c) => [c.file, c]));
    assert.deepEqual(activeLines(byFile['shield.blocklist.block']?.after), [
      'ip:198.51.100.66/32 stock connect.rdns_access.blacklist',
      'domain:spam.example.net stock connect.rdns_access.blacklist',
      'sender:spammer@example.net stock mail_from.access.blacklist',
      'rcpt:old@example.com stock rcpt_to.access.blacklist',
      'domain:spam-central.example.com stock access.domains',
      'sender:spam-central.example.com stock access.domains',
    ]);
    assert.deepEqual(activeLines(byFile['shield.blocklist.allow']?.after), [
      'ip:192.0.2.10/32 stock connect.rdns_access.whitelist',
      'domain:mail.partner.example.com stock connect.rdns_access.whitelist',
      'sender:boss@example.com stock mail_from.access.whitelist',
      'rcpt:postmaster@example.com stock rcpt_to.access.whitelist',
      'sender:friend@spam-central.example.com stock access.domains',
      'sender:ok.spam-central.example.com stock access.domains',
    ]);
    const notes = plan.notes.join('\n');
    assert.match(notes, /^config\/connect\.rdns_access\.blacklist line 3: "user@example\.net" is an address; [^\n]*not imported$/m);
    assert.match(notes, /^config\/connect\.rdns_access\.blacklist line 4: "300\.1\.2\.3" is not a valid IP address or CIDR range; not imported$/m);
    assert.match(notes, /^config\/connect\.rdns_access\.blacklist_regex: 1 pattern\(s\) not imported \(line 1: \.\*\\\.dynamic\\\.example\\\.net\)/m);
    assert.match(notes, /^config\/mail_from\.access\.blacklist line 2: "example\.org" is not an address; the access plugin compares whole addresses, so it never matched; not imported/m);
    assert.match(notes, /^config\/access\.domains line 3: "!ok\.spam-central\.example\.com" also exempted the host/m);
    // every line the plan writes is one the blocklist reads back as the entry it meant
    assert.deepEqual(planStockImport(reader(applied(files))).changes, []);
  });

  it('grants nothing a stock plugin that is off does not grant today', () => {
    const files = {
      plugins: 'rcpt_to.in_host_list\n#relay\n',
      relay_acl_allow: '192.0.2.0/24\n',
      'relay_dest_domains.ini': '[domains]\nexample.org = { "action": "accept" }\n',
      'connect.rdns_access.whitelist': '192.0.2.10\n',
      'mail_from.access.blacklist': 'spammer@example.net\n',
    };
    const plan = planStockImport(reader(files));
    assert.deepEqual(plan.changes, []);
    assert.deepEqual(plan.notes, [
      'relay_dest_domains.ini: 1 domain(s) not imported: the relay plugin is not enabled in config/plugins, so they are not accepted today',
      'config/relay_acl_allow: 1 network(s) not imported: the relay plugin is not enabled in config/plugins, so they cannot relay today',
      'config/connect.rdns_access.whitelist: 1 line(s) not imported: the access plugin is not enabled in config/plugins, so they are not enforced today',
      'config/mail_from.access.blacklist: 1 line(s) not imported: the access plugin is not enabled in config/plugins, so they are not enforced today',
    ]);
    const aclOff = planStockImport(reader({ ...files, plugins: 'relay\n', 'relay.ini': '[relay]\nacl = false\ndest_domains = true\n' }));
    assert.deepEqual(aclOff.changes.map((c) => [c.file, activeLines(c.after)]), [['shield.relay.domains', ['example.org']]]);
    assert.match(aclOff.notes.join('\n'), /relay_acl_allow: 1 network\(s\) not imported: the relay plugin has \[relay\] acl = false/);
    const checkOff = planStockImport(reader({ ...files, plugins: 'access\n', 'access.ini': '[check]\nmail = false\n' }));
    assert.deepEqual(checkOff.changes.map((c) => [c.file, activeLines(c.after)]), [['shield.blocklist.allow', ['ip:192.0.2.10/32 stock connect.rdns_access.whitelist']]]);
    assert.match(checkOff.notes.join('\n'), /mail_from\.access\.blacklist: 1 line\(s\) not imported: access\.ini \[check\] mail = false/);
  });

  it('relay settings: acl networks (bare, host bits, IPv6), dest_domains, patterns and what has no equivalent', () => {
    const plan = planStockImport(
      reader({
        plugins: 'relay\n',
        'relay.ini': '[relay]\ndest_domains = true\nforce_routing = true\nall = true\n',
        relay_acl_allow: '198.51.100.5/24 # office\n2001:db8::1\n192.0.2.7\nnot-an-ip\n10.0.0.0/33\n',
        'relay_dest_domains.ini': '[domains]\nexample.org = { "action": "accept", "nexthop": "192.0.2.1:25" }\nexample.net = { "action": "continue" }\nexample.com = { "action": "deny" }\nbroken.example = {action\n',
        host_list_regex: '.*\\.example\\.org\n',
      }),
    );
    const byFile = Object.fromEntries(plan.changes.map((c) => [c.file, activeLines(c.after)]));
    assert.deepEqual(byFile['shield.relay.networks'], ['198.51.100.0/24', '2001:db8::1/128', '192.0.2.7/32']);
    assert.deepEqual(byFile['shield.relay.domains'], ['example.org', 'example.net']);
    const notes = plan.notes.join('\n');
    assert.match(notes, /relay\.ini \[relay\] all = true accepts every recipient/);
    assert.match(notes, /relay\.ini \[relay\] force_routing: routing \(nexthop\) has no shield equivalent/);
    assert.match(notes, /relay_dest_domains\.ini \[domains\] broken\.example: the value is not JSON; not imported/);
    assert.match(notes, /config\/relay_acl_allow line 1: "198\.51\.100\.5\/24" imported as 198\.51\.100\.0\/24/);
    assert.match(notes, /config\/relay_acl_allow line 4: "not-an-ip" is not an IP address or CIDR range; not imported/);
    assert.match(notes, /config\/relay_acl_allow line 5: "10\.0\.0\.0\/33": prefix length must be 0\.\.32; not imported/);
    assert.match(notes, /config\/host_list_regex: 1 pattern\(s\) not imported \(line 1: \.\*\\\.example\\\.org\): shield\.relay takes exact domains/);
  });

  it('writes where the instance\'s shield ini files say, and refuses a bad one with one line', () => {
    const plan = planStockImport(
      reader({
        host_list: 'example.org\n',
        'shield.relay.ini': '[main]\ndomains_file = local-domains\n',
        'shield.blocklist.ini': '[main]\nblock_file = blocks.txt\n',
        plugins: 'access\n',
        'rcpt_to.access.blacklist': 'old@example.org\n',
      }),
    );
    assert.deepEqual(plan.changes.map((c) => c.file), ['local-domains', 'blocks.txt']);
    assert.throws(() => planStockImport(reader({ 'shield.relay.ini': '[main]\nnetwork = 192.0.2.0/24\n' })), (e: unknown) => e instanceof CliError && /^shield\.relay\.ini \[main\] network: unknown key/.test(e.message));
    const noFile = planStockImport(reader({ host_list: 'example.org\n', 'shield.relay.ini': '[main]\ndomains_file =\n' }));
    assert.deepEqual(noFile.changes, []);
    assert.deepEqual(noFile.notes, ['shield.relay.ini has no domains_file: add to [main] domains: example.org']);
  });

  it('prints a unified diff of each change', () => {
    const [added] = planStockImport(reader({ host_list: 'example.org\n', 'shield.relay.domains': 'a.example\nb.example\nc.example\nd.example\n' })).changes;
    assert.equal(unifiedDiff(added!), '--- config/shield.relay.domains\n+++ config/shield.relay.domains\n@@ -2,3 +2,5 @@\n b.example\n c.example\n d.example\n+# imported from config/host_list by haraka-shield import stock\n+example.org');
    const [created] = planStockImport(reader({ host_list: 'example.org\n' })).changes;
    assert.equal(unifiedDiff(created!), '--- /dev/null\n+++ config/shield.relay.domains\n@@ -0,0 +1,2 @@\n+# imported from config/host_list by haraka-shield import stock\n+example.org');
  });

  it('names each enabled stock plugin an enabled shield plugin replaces (stockConflicts)', () => {
    assert.deepEqual(enabledPlugins('# x\nrelay\n  access  # comment\nharaka-plugin-fcrdns\n\n;limit\n'), ['relay', 'access', 'fcrdns']);
    assert.deepEqual(stockConflictLines(['relay', 'access', 'helo.checks', 'dns-list', 'shield.relay', 'shield.rdns', 'rcpt_to.in_host_list', 'queue/discard']), [
      'config/plugins: relay is replaced by shield.relay, relay networks (run haraka-shield import stock first): remove relay',
      'config/plugins: helo.checks is replaced by shield.rdns, HELO checks: config/shield.rdns.ini: remove helo.checks',
      'config/plugins: rcpt_to.in_host_list is replaced by shield.relay, local domains (run haraka-shield import stock first; keep it only with shield.relay accept_local = false): remove rcpt_to.in_host_list',
    ]);
    const dir = instance({ plugins: 'shield.limit\nlimit\nshield.dnsbl\ndns-list\nfcrdns\n' });
    assert.deepEqual(stockConflicts(dir), [
      'config/plugins: limit is replaced by shield.limit, limits: config/shield.limit.ini: remove limit',
      'config/plugins: dns-list is replaced by shield.dnsbl, DNS lists: config/shield.dnsbl.ini: remove dns-list',
    ]);
    assert.deepEqual(stockConflicts(instance({})), []);
  });
});

describe('haraka-shield import stock (CLI)', function () {
  this.timeout(20000);

  it('prints the diff and writes nothing; --write writes; a second run proposes nothing', async () => {
    const dir = instance({ plugins: 'relay\nshield.relay\n', host_list: 'example.org\n', relay_acl_allow: '192.0.2.0/24\n', 'shield.relay.domains': '# mine\n' });
    const dry = await cli(['import', 'stock', dir]);
    assert.match(dry, /^--- config\/shield\.relay\.domains\n\+\+\+ config\/shield\.relay\.domains\n@@ -1,1 \+1,3 @@\n # mine\n\+# imported from config\/host_list by haraka-shield import stock\n\+example\.org\n/m);
    assert.match(dry, /^--- \/dev\/null\n\+\+\+ config\/shield\.relay\.networks\n/m);
    assert.match(dry, /^nothing written: run again with --write to apply$/m);
    assert.match(dry, /^config\/plugins: relay is replaced by shield\.relay/m);
    assert.equal(fs.readFileSync(path.join(dir, 'config', 'shield.relay.domains'), 'utf8'), '# mine\n');
    assert.equal(fs.existsSync(path.join(dir, 'config', 'shield.relay.networks')), false);

    const wrote = await cli(['import', 'stock', '--write', dir]);
    assert.match(wrote, /^wrote config\/shield\.relay\.domains \(1 added\)$/m);
    assert.match(wrote, /^wrote config\/shield\.relay\.networks \(1 added\)$/m);
    assert.equal(fs.readFileSync(path.join(dir, 'config', 'shield.relay.domains'), 'utf8'), '# mine\n# imported from config/host_list by haraka-shield import stock\nexample.org\n');

    const again = await runCli(['import', 'stock', '--write'], { HARAKA: dir });
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stdout, /^(---|\+\+\+|wrote)/m);
    assert.match(again.stdout, /^nothing to import: the shield files already have everything the stock config converts$/m);
    assert.equal(fs.readFileSync(path.join(dir, 'config', 'shield.relay.domains'), 'utf8'), '# mine\n# imported from config/host_list by haraka-shield import stock\nexample.org\n');
  });

  it('refuses mistakes with one line and writes nothing', async () => {
    const dir = instance({ host_list: 'example.org\n' });
    for (const [args, line] of [
      [['import'], 'haraka-shield: import: say what to import: haraka-shield import stock [--write] [DIR]\n'],
      [['import', 'postfix'], 'haraka-shield: import postfix: only "import stock" exists (Haraka\'s stock relay/access config)\n'],
      [['import', 'stock', '--wirte', dir], 'haraka-shield: unknown option --wirte (options: --write, --config, --help)\n'],
      [['import', 'stock', '--write=yes', dir], 'haraka-shield: --write takes no value (got --write=yes)\n'],
      [['import', 'stock', dir, dir], 'haraka-shield: import stock: give one instance directory\n'],
      [['import', 'stock', '/nonexistent'], 'haraka-shield: /nonexistent is not a Haraka instance (no config/ directory)\n'],
    ] as Array<[string[], string]>) {
      const r = await runCli(args);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stderr, line);
      assert.equal(r.stdout, '');
    }
    const bad = instance({ host_list: 'example.org\n', 'shield.relay.ini': '[main]\naccept_subdomains = maybe\n' });
    const r = await runCli(['import', 'stock', '--write', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^haraka-shield: shield\.relay\.ini \[main\] accept_subdomains: [^\n]+\n$/);
    assert.equal(r.stdout, '');
    assert.deepEqual(fs.readdirSync(path.join(bad, 'config')).sort(), ['host_list', 'shield.relay.ini']);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'config')), ['host_list']);
  });
});

describe('install + import stock into a stock instance, with a real Haraka (integration)', function () {
  this.timeout(60000);
  let dns: DnsFixture;
  let haraka: HarakaProcess | undefined;
  let inst: string;

  before(async () => {
    dns = await DnsFixture.start();
    inst = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'shield-stock-')), 'haraka');
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'Haraka', 'bin', 'haraka'), '-i', inst], { stdio: 'ignore' });
  });
  after(async () => {
    await haraka?.stop();
    await dns.close();
    fs.rmSync(path.dirname(inst), { recursive: true, force: true });
  });

  async function rcpt(to: string, from = '198.18.5.1'): Promise<string> {
    haraka = await startHaraka({ plugins: [], dir: inst });
    try {
      const r = await session({ port: haraka.port, localAddress: '127.0.0.211', proxyFrom: from, from: 'a@example.net', rcpts: [to] });
      return r.rcpts[0]?.text ?? '';
    } finally {
      await haraka.stop();
      haraka = undefined;
    }
  }

  it('a host_list domain is refused after install alone, accepted (250) after import stock', async () => {
    const cfg = (f: string) => path.join(inst, 'config', f);
    fs.writeFileSync(cfg('host_list'), '# the stock local domains\nmail.example.org\n');
    fs.writeFileSync(cfg('relay_acl_allow'), '198.18.6.0/24\n');
    // the stock plugins this instance ran (no DNS-resolving ones: the tests never reach real DNS)
    fs.writeFileSync(cfg('plugins'), 'relay\nrcpt_to.in_host_list\nqueue/discard\n');

    const out = await cli(['install', '--enable', 'shield.relay', inst]);
    assert.match(out, /^hint: this instance has stock relay\/access config \(config\/host_list, config\/relay_acl_allow\): run haraka-shield import stock to carry it over/m);
    assert.match(out, /^hint: config\/plugins: relay is replaced by shield\.relay/m);
    // the default domains file makes no domain local
    assert.deepEqual(activeLines(fs.readFileSync(cfg('shield.relay.domains'), 'utf8')), []);
    assert.match(fs.readFileSync(cfg('plugins'), 'utf8'), /^# haraka-shield\nshield\.relay\n\nrelay\nrcpt_to\.in_host_list\n/);
    const ini = fs.readFileSync(cfg('shield.ini'), 'utf8').replace(/^nameservers =.*$/m, `nameservers = ${dns.address}`).replace(/^backend = redis$/m, 'backend = memory');
    fs.writeFileSync(cfg('shield.ini'), ini);

    // installed and enabled, not imported yet: shield.relay refuses the stock local domain before
    // rcpt_to.in_host_list can accept it
    assert.match(await rcpt('someone@mail.example.org'), /^550 5\.7\.1 /);

    const imported = await cli(['import', 'stock', '--write', inst]);
    assert.match(imported, /^wrote config\/shield\.relay\.domains \(1 added\)$/m);
    assert.match(imported, /^wrote config\/shield\.relay\.networks \(1 added\)$/m);
    assert.match(imported, /^config\/plugins: relay is replaced by shield\.relay/m);
    // the stock relay plugin goes, as the hint says; in_host_list may stay
    fs.writeFileSync(cfg('plugins'), fs.readFileSync(cfg('plugins'), 'utf8').replace(/^relay\n/m, ''));
    assert.deepEqual(activeLines(fs.readFileSync(cfg('plugins'), 'utf8')), ['shield.relay', 'rcpt_to.in_host_list', 'queue/discard']);

    assert.match(await rcpt('someone@mail.example.org'), /^250 /);
    assert.match(await rcpt('someone@other.example.com'), /^550 5\.7\.1 /);
    // relay_acl_allow's network relays through shield.relay now
    assert.match(await rcpt('someone@other.example.com', '198.18.6.9'), /^250 /);
    assert.match(await cli(['import', 'stock', inst]), /^nothing to import: the shield files already have everything/m);
  });
});
