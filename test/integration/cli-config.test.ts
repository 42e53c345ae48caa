/** `haraka-shield config`: which files, values in the files' own form, this instance's values, errors. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONFIG_SCHEMAS } from '../../bin/haraka-shield';
import { formatDuration, formatRate, formatValue } from '../../bin/config-command';
import { runCli, cli } from '../helpers/cli';

function instance(files: Record<string, string> = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shield-cli-config-'));
  fs.mkdirSync(path.join(dir, 'config'));
  for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'config', n), c);
  return dir;
}

/** the value line of `key` under `[section]` of `file` in the text output */
function valueOf(text: string, file: string, section: string, key: string): string | undefined {
  const part = text.split(/^;;;; /m).find((p) => p.startsWith(file));
  const sect = part?.split(/^\[/m).find((s) => s.startsWith(`${section}]`));
  return sect?.split('\n').find((l) => l.startsWith(`${key} =`) || l.startsWith(`${key}[] =`));
}

async function refused(args: string[]): Promise<string> {
  const r = await runCli(args);
  assert.equal(r.code, 1, `${args.join(' ')}: exit ${r.code}\n${r.stdout}${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^haraka-shield: [^\n]+\n$/, 'exactly one line');
  return r.stderr;
}

describe('haraka-shield config (CLI)', function () {
  this.timeout(20000);

  it('formats values the way the ini files write them', () => {
    assert.deepEqual([0.25, 0.001, 1.5, 30, 90, 300, 7200, 86400, 604800, 0].map(formatDuration), ['250ms', '1ms', '1500ms', '30s', '90s', '5m', '2h', '1d', '7d', '0s']);
    assert.equal(formatRate({ limit: 60, windowSec: 60 }), '60/1m');
    assert.equal(formatRate({ limit: 2000, windowSec: 86400 }), '2000/1d');
    assert.equal(formatRate(null), 'off');
    assert.deepEqual(formatValue({ kind: 'boolean' }, false), { text: 'false' });
    assert.deepEqual(formatValue({ kind: 'list' }, ['postmaster', 'abuse']), { text: 'postmaster, abuse' });
    assert.deepEqual(formatValue({ kind: 'list' }, []), { text: '' });
    assert.deepEqual(formatValue({ kind: 'list' }, ['127.0.0.2 sbl 1']), { text: '127.0.0.2 sbl 1', lines: ['127.0.0.2 sbl 1'] });
  });

  it('takes the plugin as relay, shield.relay or shield.relay.ini, and shield for shield.ini', async () => {
    const outs = await Promise.all([['relay'], ['shield.relay'], ['shield.relay.ini'], ['RELAY']].map((a) => cli(['config', ...a])));
    for (const o of outs) assert.equal(o, outs[0]);
    assert.match(outs[0] as string, /^;;;; shield\.relay\.ini: defaults\n/);
    assert.doesNotMatch(outs[0] as string, /shield\.limit\.ini|;;;; shield\.ini/);
    const suite = await cli(['config', 'shield']);
    assert.match(suite, /^;;;; shield\.ini: defaults\n/);
    assert.equal((suite.match(/^;;;; /gm) ?? []).length, 1);
    assert.equal(valueOf(suite, 'shield.ini', 'store', 'timeout'), 'timeout = 250ms');
    assert.equal(valueOf(suite, 'shield.ini', 'main', 'exempt_rcpts'), 'exempt_rcpts = postmaster, abuse');
  });

  it('prints every file without a plugin, defaults in the files\' form', async () => {
    const all = await cli(['config']);
    assert.deepEqual(all.match(/^;;;; [^:]+/gm), CONFIG_SCHEMAS.map(([file]) => `;;;; ${file}`));
    assert.equal(valueOf(all, 'shield.limit.ini', 'rates', 'conn_ip'), 'conn_ip = 60/1m');
    assert.equal(valueOf(all, 'shield.limit.ini', 'rates', 'conn_net'), 'conn_net = off');
    assert.equal(valueOf(all, 'shield.limit.ini', 'main', 'lease_refresh'), 'lease_refresh = 30s');
    assert.equal(valueOf(all, 'shield.relay.ini', 'main', 'accept_subdomains'), 'accept_subdomains = false');
    assert.equal(valueOf(all, 'shield.relay.ini', 'main', 'networks'), 'networks =');
    assert.equal(valueOf(all, 'shield.dnsbl.ini', '<zone name>', 'check'), 'check = helo, rdns, mail_from');
    assert.doesNotMatch(all, /\[object Object\]|= undefined|= null/);
    // documentation sits on comment lines above each key
    assert.match(all, /^; also accept mail for every subdomain of a local domain \[boolean\]\naccept_subdomains = false$/m);
  });

  it('its default output, used as the instance\'s files, reads back as exactly the defaults', async () => {
    const files: Record<string, string> = {};
    for (const [file] of CONFIG_SCHEMAS) {
      let text = await cli(['config', file]);
      // the zone template is documentation, not a section a file can have
      if (file === 'shield.dnsbl.ini') text = text.replace(/\n; one section per DNS list[\s\S]*$/, '\n');
      files[file] = text;
    }
    const dir = instance(files);
    const json = JSON.parse(await cli(['config', '--effective', '--json', '--config', dir])) as Array<{ file: string; path: string | null; keys: Array<{ key: string; changed: boolean; value: string; default: string }> }>;
    assert.equal(json.length, CONFIG_SCHEMAS.length);
    for (const f of json) {
      assert.equal(f.path, path.join(dir, 'config', f.file));
      assert.deepEqual(f.keys.filter((k) => k.changed), [], f.file);
      assert.ok(f.keys.length > 0);
    }
  });

  it('--effective shows this instance\'s values next to the defaults', async () => {
    const dir = instance({ 'shield.limit.ini': '[rates]\nconn_ip = 120/60s\n\n[main]\ntarpit = 0.5s\n' });
    const out = await cli(['config', 'limit', '--effective', '--config', dir]);
    assert.match(out, /^;;;; shield\.limit\.ini: this instance's values \(.*shield\.limit\.ini\)$/m);
    assert.match(out, /^; [^\n]*\[rate; default: 60\/1m; changed\]\nconn_ip = 120\/1m$/m);
    assert.match(out, /default: off; changed\]\ntarpit = 500ms$/m);
    assert.match(out, /\[rate; default: off\]\nconn_net = off$/m);
    // HARAKA names the instance too; a file the instance lacks shows its defaults
    const r = await runCli(['config', 'rdns', '--effective'], { HARAKA: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^;;;; shield\.rdns\.ini: not in this instance \(defaults apply\)$/m);
  });

  it('--effective shows shield.dnsbl.ini zone sections: in use first, then the unused ones', async () => {
    const dir = instance({
      'shield.dnsbl.ini': '[main]\nzones = zen\n\n[spare]\ntype = ip\nzone = bl.example.net\n\n[zen]\nzone = zen.example.org\nlisted[] = 127.0.0.2 sbl 1\nlisted[] = 127.0.0.4-127.0.0.7 xbl 1\nerrors[] = 127.0.0.255\n',
    });
    const out = await cli(['config', 'dnsbl', '--effective', '--config', dir]);
    assert.ok(out.indexOf('[zen]') < out.indexOf('[spare]'));
    assert.match(out, /; not in \[main\] zones: not queried\n\[spare\]/);
    assert.match(out, /^listed\[\] = 127\.0\.0\.2 sbl 1\nlisted\[\] = 127\.0\.0\.4-127\.0\.0\.7 xbl 1$/m);
    assert.match(out, /^errors\[\] = 127\.0\.0\.255$/m);
    assert.doesNotMatch(out, /<zone name>/);
    const json = JSON.parse(await cli(['config', 'dnsbl', '--effective', '--json', '--config', dir])) as Array<{ zones: Array<{ name: string; inUse: boolean }> }>;
    assert.deepEqual(json[0]?.zones.map((z) => [z.name, z.inUse]), [['zen', true], ['spare', false]]);
  });

  it('refuses with one line: unknown plugin, bad files, misplaced options', async () => {
    assert.equal(await refused(['config', 'nosuch']), 'haraka-shield: config nosuch: no such plugin (known: shield, blocklist, dnsbl, limit, rdns, relay)\n');
    assert.equal(await refused(['config', 'relay', 'limit']), 'haraka-shield: config: give at most one plugin (got relay limit)\n');
    assert.equal(await refused(['config', '--effectiv']), 'haraka-shield: unknown option --effectiv (options: --effective, --json, --config, --help)\n');
    assert.equal(await refused(['config', 'relay', '--config', '/nonexistent']), 'haraka-shield: config: --config DIR goes with --effective (the defaults are the same everywhere)\n');
    assert.match(await refused(['config', '--effective', '--config', '/nonexistent']), /^haraka-shield: \/nonexistent is not a Haraka instance/);
    const bad = instance({ 'shield.limit.ini': '[rates]\nconn_ip = lots\n' });
    assert.match(await refused(['config', '--effective', '--config', bad]), /^haraka-shield: shield\.limit\.ini \[rates\] conn_ip: "lots" is not a rate/);
    const unknownKey = instance({ 'shield.relay.ini': '[main]\nnetwork = 192.0.2.0/24\n' });
    assert.match(await refused(['config', 'relay', '--effective', '--config', unknownKey]), /^haraka-shield: shield\.relay\.ini \[main\] network: unknown key/);
    const noZone = instance({ 'shield.dnsbl.ini': '[main]\nzones = zen\n' });
    assert.match(await refused(['config', 'dnsbl', '--effective', '--config', noZone]), /^haraka-shield: shield\.dnsbl\.ini \[main\] zones: no section \[zen\]/);
    const badZone = instance({ 'shield.dnsbl.ini': '[main]\nzones = zen\n[zen]\nzone = zen.example.org\ntype = bogus\n' });
    assert.match(await refused(['config', 'dnsbl', '--effective', '--config', badZone]), /^haraka-shield: shield\.dnsbl\.ini \[zen\] type: /);
  });
});
