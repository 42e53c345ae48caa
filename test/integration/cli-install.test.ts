/**
 * `haraka-shield install` without npm pack (install.test.ts does the whole packaged path): the order
 * it gives config/plugins, what the default files it copies carry, its hints and its refusals.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { enablePlugins } from '../../bin/haraka-shield';
import { parseConfig } from '../../plugins/shield/core/config';
import { listFileEntries } from '../../plugins/shield/core/list-entries';
import { RELAY_SCHEMA } from '../../plugins/shield/checks/relay-config';
import { ROOT } from '../helpers/haraka';
import { runCli, cli } from '../helpers/cli';

const iniReader = require('haraka-config/lib/readers/ini') as { parseIni(name: string, options: object, data: string): Record<string, Record<string, string>> };

function instance(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shield-install-cli-'));
  fs.mkdirSync(path.join(dir, 'config'));
  fs.writeFileSync(path.join(dir, 'config', 'smtp.ini'), 'listen=127.0.0.1:2525\n');
  for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'config', n), c);
  return dir;
}

const active = (text: string): string[] => text.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean);

describe('haraka-shield install (CLI)', function () {
  this.timeout(20000);

  it('puts shield.relay first in config/plugins, whatever order --enable names it in', () => {
    assert.equal(enablePlugins('', ['shield.blocklist', 'shield.relay'])?.text, '# haraka-shield\nshield.relay\nshield.blocklist\n');
    const stock = '# RCPT TO\nrcpt_to.in_host_list\nqueue/smtp_forward\n';
    const next = enablePlugins(stock, ['shield.limit', 'shield.relay', 'shield.relay']);
    assert.equal(next?.text, `# haraka-shield\nshield.relay\nshield.limit\n\n${stock}`);
    assert.deepEqual(next?.added, ['shield.relay', 'shield.limit']);
    // enabled already and first: nothing to do; a plugin enabled later goes right after shield.relay
    assert.equal(enablePlugins(next?.text ?? '', ['shield.relay']), null);
    assert.deepEqual(active(enablePlugins(next?.text ?? '', ['shield.blocklist'])?.text ?? ''), ['shield.relay', 'shield.blocklist', 'shield.limit', 'rcpt_to.in_host_list', 'queue/smtp_forward']);
    // without shield.relay, the new ones go on top
    assert.deepEqual(active(enablePlugins(stock, ['shield.blocklist'])?.text ?? ''), ['shield.blocklist', 'rcpt_to.in_host_list', 'queue/smtp_forward']);
    // listed below a recipient plugin by hand: enabling it again moves it to the top, once
    const late = enablePlugins('rcpt_to.in_host_list\nshield.relay\nqueue/discard\n', ['shield.relay', 'shield.blocklist']);
    assert.deepEqual(active(late?.text ?? ''), ['shield.relay', 'shield.blocklist', 'rcpt_to.in_host_list', 'queue/discard']);
    assert.deepEqual(late?.moved, ['shield.relay']);
    // a commented-out shield.relay is not enabled
    assert.deepEqual(active(enablePlugins('#shield.relay\nrcpt_to.in_host_list\n', ['shield.relay'])?.text ?? ''), ['shield.relay', 'rcpt_to.in_host_list']);
  });

  it('the default files it copies make no domain local, no network a relay and block or allow nothing', () => {
    const cfg = path.join(ROOT, 'config');
    const shipped = fs.readdirSync(cfg).filter((f) => /^shield/.test(f));
    assert.ok(shipped.includes('shield.relay.domains') && shipped.includes('shield.relay.ini'), shipped.join(', '));
    const relay = parseConfig('shield.relay.ini', RELAY_SCHEMA, iniReader.parseIni('shield.relay.ini', {}, fs.readFileSync(path.join(cfg, 'shield.relay.ini'), 'utf8')));
    assert.deepEqual([relay.main.domains, relay.main.networks], [[], []]);
    for (const f of [relay.main.domains_file, relay.main.networks_file]) {
      if (fs.existsSync(path.join(cfg, f))) assert.deepEqual(active(fs.readFileSync(path.join(cfg, f), 'utf8')), [], f);
    }
    for (const [f, list] of [['shield.blocklist.block', 'block'], ['shield.blocklist.allow', 'allow']] as const) {
      assert.deepEqual(listFileEntries(f, list, fs.readFileSync(path.join(cfg, f), 'utf8').split('\n'), (n, m) => assert.fail(`${f}:${n}: ${m}`)), []);
    }
  });

  it('hints at the stock setup it finds and at stock plugins a shield plugin replaces', async () => {
    const dir = instance({ plugins: 'access\nrcpt_to.in_host_list\n', host_list: 'example.org\n', 'rcpt_to.access.blacklist': 'old@example.org\n' });
    const out = await cli(['install', '--enable', 'shield.relay,shield.blocklist', dir]);
    assert.match(out, /^config\/shield\.relay\.domains added$/m);
    assert.match(out, /^config\/plugins: enabled shield\.relay, shield\.blocklist$/m);
    assert.match(out, /^hint: this instance has stock relay\/access config \(config\/host_list, config\/rcpt_to\.access\.blacklist\): run haraka-shield import stock to carry it over \(shield\.relay refuses mail for domains it does not know\)$/m);
    assert.match(out, /^hint: config\/plugins: access is replaced by shield\.blocklist, /m);
    assert.match(out, /^hint: config\/plugins: rcpt_to\.in_host_list is replaced by shield\.relay, /m);
    await cli(['import', 'stock', '--write', dir]);
    // imported: no hint to import again; the plugin conflicts stay until the operator removes them
    const again = await cli(['install', dir]);
    assert.doesNotMatch(again, /run haraka-shield import stock to carry it over/);
    assert.match(again, /^config\/shield\.relay\.domains kept \(exists\)$/m);
    assert.match(again, /^hint: config\/plugins: access is replaced by shield\.blocklist/m);
    // an instance with nothing stock: no hint
    assert.doesNotMatch(await cli(['install', instance({})]), /^hint/m);
  });

  it('refuses mistakes with one line, writing nothing', async () => {
    const dir = instance({});
    for (const [args, line] of [
      [['install', '--enable', 'shield.nope', dir], /^haraka-shield: --enable shield\.nope: not a shield plugin \(have: shield\.blocklist, [^\n]*\)\n$/],
      [['install', '--enable', dir], /^haraka-shield: --enable \S+: not a shield plugin \(have: [^\n]*\)\n$/],
      [['install', '--enable'], /^haraka-shield: --enable needs a value\n$/],
      [['install', '--force', dir], /^haraka-shield: unknown option --force \(options: --enable\)\n$/],
      [['install', dir, dir], /^haraka-shield: install: give one instance directory \(got [^\n]+\)\n$/],
      [['install', path.join(dir, 'config')], /^haraka-shield: \S+ is not a Haraka instance \(no config\/smtp\.ini\); create one with: haraka -i \S+\n$/],
    ] as Array<[string[], RegExp]>) {
      const r = await runCli(args);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, line);
      assert.equal(r.stdout, '');
    }
    assert.deepEqual(fs.readdirSync(dir), ['config']);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'config')), ['smtp.ini']);
  });
});
