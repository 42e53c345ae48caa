/**
 * The worked plugin example of docs/development.md, compiled as written and run in a real Haraka
 * next to the suite: the docs promise that it refuses spam.example (HELO and EHLO) and tags a HELO
 * without a dot, and a plugin copied from them must not tag every clean client.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { DnsFixture } from '../helpers/dns-server';
import { ROOT, startHaraka, type HarakaProcess } from '../helpers/haraka';
import { SmtpClient, assertReply, nextSource, session } from '../helpers/smtp';

function exampleSource(): string {
  const md = fs.readFileSync(path.join(ROOT, 'docs', 'development.md'), 'utf8');
  const m = /```ts\n(\/\/ plugins\/shield\.example\.ts[\s\S]*?)```/.exec(md);
  assert.ok(m, 'the example is in docs/development.md');
  return m[1] as string;
}

describe('the docs/development.md example plugin (integration)', function () {
  this.timeout(30000);
  let haraka: HarakaProcess;
  let dns: DnsFixture;

  before(async function () {
    this.timeout(30000);
    dns = await DnsFixture.start({
      '70.92.18.198.in-addr.arpa': { PTR: ['mx.clean.example.org'] },
      'mx.clean.example.org': { A: ['198.18.92.70'] },
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shield-example-'));
    const cfg = path.join(dir, 'config');
    const plugins = path.join(dir, 'plugins');
    fs.mkdirSync(cfg, { recursive: true });
    fs.mkdirSync(plugins, { recursive: true });
    fs.writeFileSync(path.join(cfg, 'plugins'), 'shield.relay\nshield.example\ntest.capture\nqueue/discard\n');
    fs.writeFileSync(path.join(cfg, 'shield.ini'), `[dns]\nnameservers = ${dns.address}\ntimeout = 500ms\n\n[store]\nbackend = memory\n\n[policy]\ntag_score = 1\n`);
    fs.writeFileSync(path.join(cfg, 'shield.relay.ini'), '[main]\ndomains = example.com\n');
    fs.writeFileSync(path.join(cfg, 'shield.relay.domains'), '');
    for (const f of fs.readdirSync(path.join(ROOT, 'plugins'))) {
      if (/^shield\..*\.js$/.test(f) || f === 'shield') fs.symlinkSync(path.join(ROOT, 'plugins', f), path.join(plugins, f));
    }
    fs.symlinkSync(path.join(ROOT, 'test', 'fixtures', 'plugins', 'test.capture.js'), path.join(plugins, 'test.capture.js'));
    // the example, compiled as the build compiles the plugins
    const js = ts.transpileModule(exampleSource(), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
    fs.writeFileSync(path.join(plugins, 'shield.example.js'), js);
    haraka = await startHaraka({ plugins: [], dir });
  });
  after(async () => {
    await haraka?.stop();
    await dns?.close();
  });

  it('HELO (not EHLO) spam.example is refused by its hard action', async () => {
    const c = await SmtpClient.connect({ port: haraka.port, localAddress: nextSource(), proxyFrom: '198.18.92.72' });
    try {
      assertReply(await c.cmd('HELO spam.example'), 550, '5.7.1', 'HELO spam.example');
    } finally {
      await c.quit();
    }
  });

  it('a clean client saying HELO with a dotted name is not tagged', async () => {
    const c = await SmtpClient.connect({ port: haraka.port, localAddress: nextSource(), proxyFrom: '198.18.92.70' });
    try {
      assert.equal((await c.cmd('HELO mx.clean.example.org')).code, 250);
      assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
      assert.equal((await c.cmd('RCPT TO:<b@example.com>')).code, 250);
      assert.equal((await c.data('From: a@example.org\n\nhi\n')).code, 250);
    } finally {
      await c.quit();
    }
    await new Promise((res) => setTimeout(res, 300));
    assert.doesNotMatch(haraka.output, /captured X-Shield: .*example:no_dot/, 'every clean HELO client is tagged example:no_dot and its mail gets X-Shield');
  });

  it('refuses EHLO spam.example with its hard action (clients say EHLO)', async () => {
    const r = await session({ port: haraka.port, localAddress: nextSource(), proxyFrom: '198.18.92.71', helo: 'spam.example', from: 'a@example.org', rcpts: ['b@example.com'] });
    assertReply(r.ehlo, 550, '5.7.1', 'HELO spam.example');
  });
});
