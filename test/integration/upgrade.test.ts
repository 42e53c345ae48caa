/**
 * An existing install upgraded in place: `haraka-shield install` never overwrites an operator's
 * .ini files, so the files the previous version (0.1.0) shipped are what the new plugins read. They
 * must start, ignore the keys that moved, and say where each went.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, startHaraka, type HarakaProcess } from '../helpers/haraka';

const OLD = path.join(ROOT, 'test', 'fixtures', 'upgrade-0.1.0');

describe('upgrading with the ini files 0.1.0 shipped (integration)', function () {
  this.timeout(30000);
  let h: HarakaProcess | null = null;
  afterEach(async () => {
    await h?.stop();
    h = null;
  });

  for (const [plugin, file, keys] of [
    ['shield.dnsbl', 'shield.dnsbl.ini', ['exempt_rcpts', 'header']],
    ['shield.blocklist', 'shield.blocklist.ini', ['delay_reject_exempt']],
  ] as const) {
    it(`${plugin} starts with the ${file} of 0.1.0 and says where ${keys.join(' and ')} went`, async () => {
      h = await startHaraka({ plugins: ['shield.relay', plugin, 'queue/discard'], redisPort: null, files: { [file]: fs.readFileSync(path.join(OLD, file), 'utf8') } });
      assert.ok(h.running);
      for (const key of keys) {
        await h.waitFor(new RegExp(`${file.replace(/\./g, '\\.')} \\[main\\] ${key}: ignored; retired: `));
      }
    });
  }
});
