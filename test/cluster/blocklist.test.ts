/**
 * Two Haraka nodes, one Redis: an entry added with the CLI (against either node's config) blocks the
 * client on both within the sync interval (default 1 s), and its expiry lifts the block on both.
 */
import assert from 'node:assert/strict';
import { cli } from '../helpers/cli';
import { until, useHaraka } from '../helpers/env';
import type { HarakaProcess } from '../helpers/haraka';
import { greet } from '../helpers/smtp';

const PLUGINS = ['shield.relay', 'shield.blocklist', 'queue/discard'];

describe('shield.blocklist cluster: two nodes, one Redis', function () {
  this.timeout(40000);
  const env = useHaraka({ plugins: PLUGINS, nodes: 2, waitForRedis: true });
  let a: HarakaProcess;
  let b: HarakaProcess;
  before(() => ([a, b] = env.nodes as [HarakaProcess, HarakaProcess]));

  const text = async (h: HarakaProcess, ip: string): Promise<string> => (await greet(h.port, ip)).text;

  it('a CLI entry with --ttl blocks the client on both nodes within a second, and its expiry frees it on both', async () => {
    const ip = '198.18.8.3';
    assert.match(await text(a, ip), /^220 /);
    assert.match(await text(b, ip), /^220 /);
    const added = Date.now();
    await cli(['block', 'add', '198.18.8.0/29', '--ttl', '4s', '--reason', 'cluster test', '--config', a.dir]);
    const [ta, tb] = await Promise.all([
      until('node A blocks', async () => /^554 5\.7\.1 /.test(await text(a, ip)), 3000),
      until('node B blocks', async () => /^554 5\.7\.1 /.test(await text(b, ip)), 3000),
    ]);
    assert.ok(Math.max(ta, tb) < 1500, `both nodes blocked after ${ta} / ${tb} ms`);
    assert.match(await text(b, '198.18.8.7'), /^554 5\.7\.1 Connection refused: your address 198\.18\.8\.7 /);
    assert.match(await text(b, '198.18.8.9'), /^220 /, 'outside the /29');
    // the entry expires 4 s after it was added, on both nodes, with no further write
    await Promise.all([
      until('node A unblocks', async () => /^220 /.test(await text(a, ip)), 8000),
      until('node B unblocks', async () => /^220 /.test(await text(b, ip)), 8000),
    ]);
    const lifted = Date.now() - added;
    assert.ok(lifted >= 3900 && lifted < 6000, `lifted ${lifted} ms after the add`);
  });

  it('an entry removed through one node\'s config is lifted on both', async () => {
    const ip = '198.18.9.9';
    await cli(['block', 'add', ip, '--config', b.dir]);
    await until('both block', async () => /^554 /.test(await text(a, ip)) && /^554 /.test(await text(b, ip)), 3000);
    await cli(['block', 'remove', ip, '--config', a.dir]);
    await until('both accept', async () => /^220 /.test(await text(a, ip)) && /^220 /.test(await text(b, ip)), 3000);
  });
});
