/** The guard that keeps tests off real DNS servers must itself work. Runs in a child process so
 * its violations go to a private log, not the one that fails this run. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

describe('real-DNS guard', () => {
  it('blocks and reports UDP to a non-loopback server, node:dns resolvers and dns.lookup of a name', () => {
    const log = path.join(os.tmpdir(), `guard-selftest-${process.pid}.log`);
    fs.writeFileSync(log, '');
    const script = `
      const dns = require('node:dns');
      dns.lookup('example.com', () => {});
      dns.promises.resolveTxt('example.com').catch(() => {});
      new dns.promises.Resolver().resolve4('example.com').catch(() => {});
      try { require('node:dgram').createSocket('udp4').send(Buffer.from('x'), 53, '192.0.2.53'); } catch {}
      dns.lookup('localhost', () => {});
      require('node:dgram').createSocket('udp4').send(Buffer.from('x'), 9, '127.0.0.1', (e, s) => process.exit(0));
    `;
    const r = spawnSync(process.execPath, ['-r', path.join(__dirname, '..', 'setup', 'no-real-dns.js'), '-e', script], {
      env: { ...process.env, SHIELD_DNS_GUARD_LOG: log, NODE_OPTIONS: '' },
      encoding: 'utf8',
      timeout: 10000,
    });
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    fs.rmSync(log);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(lines.length, 4, lines.join('\n'));
    assert.ok(lines.some((l) => /dns\.lookup\(example\.com\)/.test(l)));
    assert.ok(lines.some((l) => /UDP to 192\.0\.2\.53:53/.test(l)));
    assert.ok(lines.every((l) => !/localhost|127\.0\.0\.1/.test(l)), 'loopback is allowed');
  });
});
