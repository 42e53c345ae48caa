import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DnsFixture } from '../helpers/dns-server';
import { until } from '../helpers/env';
import { startHaraka, type HarakaProcess } from '../helpers/haraka';
import { greet, nextSource, session } from '../helpers/smtp';

describe('config reloads: list files created, renamed and deleted while Haraka runs (integration)', function () {
  this.timeout(120000);
  let dns: DnsFixture;
  let haraka: HarakaProcess;
  const cfg = (name: string) => path.join(haraka.dir, 'config', name);
  const blocked = async (ip: string) => (await greet(haraka.port, ip)).code === 554;
  const relays = async (ip: string) => (await session({ port: haraka.port, localAddress: nextSource(), proxyFrom: ip, helo: 'mx.example.org', from: 'a@example.org', rcpts: ['x@other.example'] })).rcpts[0]?.code === 250;

  before(async () => {
    dns = await DnsFixture.start({});
    haraka = await startHaraka({
      plugins: ['shield.relay', 'shield.blocklist', 'shield.rdns', 'queue/discard'],
      dns: dns.address,
      files: {
        'shield.relay.ini': '[main]\nnetworks = 198.18.0.0/16\ndomains = example.com\n',
        'shield.blocklist.ini': '[main]\nsync_interval = 1s\n',
        'shield.rdns.ini': '[actions]\nno_ptr = ignore\nfcrdns = ignore\ngeneric = ignore\nhelo_mismatch = ignore\n',
      },
    });
    try { fs.unlinkSync(cfg('shield.blocklist.block')); } catch { /* absent */ }
  });
  after(async () => {
    await haraka?.stop();
    await dns?.close();
  });

  it('A: a block file created after start is loaded live', async () => {
    assert.equal(await blocked('203.0.113.1'), false);
    fs.writeFileSync(cfg('shield.blocklist.block'), '203.0.113.1\n');
    await until('created file applies', () => blocked('203.0.113.1'), 20000, 500);
  });

  it('B: block_file renamed in the ini: the new file applies, the new file reloads, the old one is out', async () => {
    fs.writeFileSync(cfg('other.block'), '203.0.113.2\n');
    fs.writeFileSync(cfg('shield.blocklist.ini'), '[main]\nsync_interval = 1s\nblock_file = other.block\n');
    await until('renamed file applies', () => blocked('203.0.113.2'), 20000, 500);
    assert.equal(await blocked('203.0.113.1'), false, 'old file no longer applies');
    fs.writeFileSync(cfg('other.block'), '203.0.113.2\n203.0.113.3\n');
    await until('new file reloads', () => blocked('203.0.113.3'), 20000, 500);
    fs.writeFileSync(cfg('shield.blocklist.block'), '203.0.113.4\n');
    await new Promise((r) => setTimeout(r, 8000));
    assert.equal(await blocked('203.0.113.4'), false, 'the old file must not apply');
  });

  it('C: deleting the block file removes its entries', async () => {
    fs.unlinkSync(cfg('other.block'));
    await until('deleted file', async () => !(await blocked('203.0.113.2')), 20000, 500);
  });

  it('D: a bad relay edit then a good one: the good one applies', async () => {
    fs.writeFileSync(cfg('shield.relay.ini'), '[main]\nnetworks = 198.19.1.0/24 ; x\ndomains = example.com\n');
    await haraka.waitFor(/keeping the last good shield\.relay\.ini/, 20000);
    assert.ok(await relays('198.18.1.1'));
    fs.writeFileSync(cfg('shield.relay.ini'), '[main]\nnetworks = 198.19.2.0/24\ndomains = example.com\n');
    await until('good edit', () => relays('198.19.2.2'), 20000, 500);
    assert.equal(await relays('198.18.1.1'), false);
  });

  it('E: relay ini deleted: no relay networks left (fail closed)', async () => {
    fs.unlinkSync(cfg('shield.relay.ini'));
    await until('deleted relay ini', async () => !(await relays('198.19.2.3')), 20000, 500);
  });

  after(() => {
    console.log(haraka.output.split('\n').filter((l) => /reload|keeping|list files|relay networks|error|Invalid/i.test(l)).slice(-40).join('\n'));
  });
});
