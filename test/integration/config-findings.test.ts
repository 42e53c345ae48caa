/** Regression tests for what an adversarial review of the config work found: each failed before its fix. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli';
import { listFileEntries } from '../../plugins/shield/core/list-entries';

function instance(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'review-inst-'));
  fs.mkdirSync(path.join(dir, 'config'));
  for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'config', n), c);
  return dir;
}

describe('config: what an adversarial review found (files, check, import)', function () {
  this.timeout(30000);

  it('a "#" inside an address in a list file never widens the entry to a whole TLD', () => {
    const bad: string[] = [];
    const e = listFileEntries('shield.blocklist.allow', 'allow', ['sender:info#sales@example.com'], (n, m) => bad.push(`${n}: ${m}`));
    // today: [{ kind: 'sender', value: 'info' }] -> every sender at .info is allowlisted
    assert.deepEqual(e.map((x) => `${x.kind}:${x.value}`).filter((v) => v === 'sender:info'), [], `got ${JSON.stringify(e)}`);
  });

  it('import stock does not turn a relay_acl_allow line the stock plugin reads as one host (/0 -> /32) into an open relay', async () => {
    const dir = instance({ plugins: 'relay\nqueue/discard\n', relay_acl_allow: '0.0.0.0/0\n::/0\n' });
    const r = await runCli(['import', 'stock', dir]);
    assert.doesNotMatch(r.stdout, /^\+0\.0\.0\.0\/0$/m, r.stdout);
    assert.doesNotMatch(r.stdout, /^\+::\/0$/m, r.stdout);
  });

  it('check reports an ini line Haraka ignores (no "="), instead of "ok"', async () => {
    const dir = instance({ plugins: 'shield.relay\n', 'shield.relay.ini': '[main]\ndomains = example.com\nauth_relay false\n', 'shield.ini': '[store]\nbackend = memory\n' });
    const r = await runCli(['check', '--config', dir]);
    assert.doesNotMatch(r.stdout, /^ok:/m, r.stdout);
    assert.equal(r.code, 1);
  });

  it('check --json prints only JSON on stdout, even when an ini has a line without "="', async () => {
    const dir = instance({ plugins: 'shield.relay\n', 'shield.relay.ini': '[main]\ndomains = example.com\nauth_relay false\n', 'shield.ini': '[store]\nbackend = memory\n' });
    const r = await runCli(['check', '--json', '--config', dir]);
    assert.doesNotThrow(() => JSON.parse(r.stdout), r.stdout.slice(0, 300));
  });

  it('check calls two halves of the address space an open relay', async () => {
    const dir = instance({ plugins: 'shield.relay\n', 'shield.relay.ini': '[main]\nnetworks = 0.0.0.0/1, 128.0.0.0/1\ndomains = example.com\n', 'shield.ini': '[store]\nbackend = memory\n' });
    const r = await runCli(['check', '--config', dir]);
    assert.equal(r.code, 1, r.stdout);
  });

  it('check names the file when networks_file escapes config/ (Haraka refuses it)', async () => {
    const dir = instance({ plugins: 'shield.relay\n', 'shield.relay.ini': '[main]\nnetworks_file = ../nets\ndomains = example.com\n', 'shield.ini': '[store]\nbackend = memory\n' });
    const r = await runCli(['check', '--config', dir]);
    assert.doesNotMatch(r.stderr, /unexpected error/, r.stderr);
  });
});
