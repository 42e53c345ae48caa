/** shield.blocklist as a Haraka plugin object, through haraka-test-fixtures (the built plugin). */
import assert from 'node:assert/strict';
import path from 'node:path';
import constants from 'haraka-constants';
import type { HarakaConnection } from '../../plugins/shield/core/haraka';
import { sessionOf } from '../../plugins/shield/core/session';
import { getSuite, resetSuite } from '../../plugins/shield/core/suite';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const fixtures = require('haraka-test-fixtures');

interface HookResult {
  rc: number | undefined;
  msg: { code?: number; reply?: string } | string | undefined;
}

const code = (r: HookResult): number | undefined => (typeof r.msg === 'object' ? r.msg.code : undefined);
const text = (r: HookResult): string => (typeof r.msg === 'object' ? String(r.msg.reply) : String(r.msg));

describe('shield.blocklist plugin (haraka-test-fixtures)', () => {
  let plugin: Record<string, unknown> & { register(): void; name: string };
  const errors: string[] = [];
  const hooks: Array<[string, string, number]> = [];

  beforeEach(async () => {
    await resetSuite();
    errors.length = 0;
    hooks.length = 0;
    plugin = fixtures.helpers.makePlugin('shield.blocklist', { register: false, configDir: path.join(__dirname, '..', 'fixtures', 'blocklist') });
    plugin.logerror = (m: string) => errors.push(m);
    const orig = plugin.register_hook as (h: string, m: string, p?: number) => void;
    plugin.register_hook = function (this: unknown, h: string, m: string, p?: number) {
      hooks.push([h, m, p ?? 0]);
      return orig.call(this, h, m, p);
    };
    plugin.register();
  });
  afterEach(async () => {
    clearInterval(plugin.timer as NodeJS.Timeout);
    await resetSuite();
  });

  const connect = async (ip: string): Promise<{ r: HookResult; conn: HarakaConnection }> => {
    const conn = fixtures.helpers.makeConnection({ ip, silent: true });
    const r = (await fixtures.hooks.callConnect(plugin, conn, 'blocklist_connect')) as HookResult;
    return { r, conn };
  };

  it('registers connect, helo, ehlo and mail at -90 and rcpt at -50 (after shield.relay)', () => {
    const at = (h: string) => hooks.find((x) => x[0] === h && x[1].startsWith('blocklist_'))?.[2];
    assert.deepEqual(['connect', 'helo', 'ehlo', 'mail', 'rcpt'].map(at), [-90, -90, -90, -90, -50]);
  });

  it('reports a bad list line with file and line number and keeps the others', async () => {
    assert.ok(errors.some((e) => /^shield\.blocklist\.block line 2: "198\.51\.100\.5\/24" has host bits set; did you mean 198\.51\.100\.0\/24\?; line skipped$/.test(e)), errors.join('\n'));
    const { r } = await connect('203.0.113.5');
    assert.equal(r.rc, constants.denydisconnect);
    assert.equal(code(r), 554);
    assert.match(text(r), /^5\.7\.1 Connection refused: your address 203\.0\.113\.5 is on this server's local blocklist$/);
  });

  it('marks an allowlisted client in the Session (and does not make it a relay client)', async () => {
    const { r, conn } = await connect('203.0.113.10');
    assert.equal(r.rc, undefined);
    assert.equal(sessionOf(conn).allowlisted, true);
    assert.equal(conn.relaying, false);
  });

  it('blockTemporarily from another plugin applies on this node at once', async () => {
    assert.equal((await connect('198.51.100.9')).r.rc, undefined);
    await getSuite(plugin as never).lists.blockTemporarily('198.51.100.9', 60, 'AUTH brute force', 'shield.auth');
    await new Promise((r) => setTimeout(r, 20));
    const { r } = await connect('198.51.100.9');
    assert.equal(r.rc, constants.denydisconnect);
    assert.equal(code(r), 554);
  });

  it('refuses a blocked sender with 550 5.7.1 and lets the null sender through', async () => {
    const conn = fixtures.helpers.makeConnection({ ip: '192.0.2.1', silent: true });
    await fixtures.hooks.callConnect(plugin, conn, 'blocklist_connect');
    const r = (await fixtures.hooks.callMail(plugin, conn, 'x@bulk.example.net', {}, 'blocklist_mail')) as HookResult;
    assert.equal(r.rc, constants.deny);
    assert.equal(code(r), 550);
    assert.match(text(r), /^5\.7\.1 Sender x@bulk\.example\.net is on this server's local blocklist$/);
    const nullSender = (await fixtures.hooks.callMail(plugin, conn, '<>', {}, 'blocklist_mail')) as HookResult;
    assert.equal(nullSender.rc, undefined);
  });
});
