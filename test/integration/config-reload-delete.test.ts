/** Deleting a list file while Haraka runs empties it ("missing file = none"): Haraka's loader would keep handing out the old content. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DnsFixture } from '../helpers/dns-server';
import { startHaraka, type HarakaProcess } from '../helpers/haraka';
import { nextSource, session } from '../helpers/smtp';

describe('config reloads: a deleted relay networks file (integration)', function () {
  this.timeout(120000);
  let dns: DnsFixture;
  let haraka: HarakaProcess;
  const cfg = (name: string) => path.join(haraka.dir, 'config', name);
  const relays = async (ip: string) => (await session({ port: haraka.port, localAddress: nextSource(), proxyFrom: ip, helo: 'mx.example.org', from: 'a@example.org', rcpts: ['x@other.example'] })).rcpts[0]?.code === 250;

  before(async () => {
    dns = await DnsFixture.start({});
    haraka = await startHaraka({
      plugins: ['shield.relay', 'queue/discard'],
      dns: dns.address,
      files: {
        'shield.relay.ini': '[main]\ndomains = example.com\n',
        'shield.relay.networks': '198.18.0.0/16\n',
      },
    });
  });
  after(async () => {
    await haraka?.stop();
    await dns?.close();
  });

  it('removing config/shield.relay.networks ("missing file = none") stops 198.18.0.0/16 relaying', async () => {
    assert.ok(await relays('198.18.1.1'), 'relays before');
    fs.unlinkSync(cfg('shield.relay.networks'));
    await haraka.waitFor(/Reloaded file: .*shield\.relay\.networks/, 20000);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(await relays('198.18.1.2'), false, '198.18.1.2 still relays after its networks file was deleted');
  });
});
