/** shield.relay as a Haraka plugin object, through haraka-test-fixtures (the built plugin). */
import assert from 'node:assert/strict';
import path from 'node:path';
import constants from 'haraka-constants';
import { sessionOf } from '../../plugins/shield/core/session';
import { resetSuite } from '../../plugins/shield/core/suite';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const fixtures = require('haraka-test-fixtures');

interface HookResult {
  rc: number | undefined;
  msg: { code?: number; reply?: string } | string | undefined;
}

describe('shield.relay plugin (haraka-test-fixtures)', () => {
  let plugin: Record<string, unknown> & { register(): void; hooks?: unknown };
  const errors: string[] = [];
  const hooks: Array<[string, string, number]> = [];

  beforeEach(async () => {
    await resetSuite();
    plugin = fixtures.helpers.makePlugin('shield.relay', { register: false, configDir: path.join(__dirname, '..', 'fixtures', 'relay') });
    plugin.logerror = (m: string) => errors.push(m);
    const orig = plugin.register_hook as (h: string, m: string, p?: number) => void;
    hooks.length = 0;
    plugin.register_hook = function (this: unknown, h: string, m: string, p?: number) {
      hooks.push([h, m, p ?? 0]);
      return orig.call(this, h, m, p);
    };
    plugin.register();
  });

  const rcpt = (ip: string, addr: string, method: string, notes: Record<string, unknown> = {}): Promise<HookResult> => {
    const conn = fixtures.helpers.makeConnection({ ip, mailFrom: 'a@example.org', notes, silent: true });
    return fixtures.hooks.callRcpt(plugin, conn, addr, {}, method);
  };

  it('reports a bad line in the domains file with its line number and keeps the rest', () => {
    assert.ok(errors.some((e) => /shield\.relay\.domains line 3: "not a domain!" is not a domain name; line skipped/.test(e)), errors.join('\n'));
  });

  it('refuses a foreign domain with a 550 5.7.1 DSN at the early rcpt hook', async () => {
    const r = await rcpt('203.0.113.5', 'x@other.example', 'relay_rcpt');
    assert.equal(r.rc, constants.deny);
    assert.equal(typeof r.msg === 'object' && r.msg.code, 550);
    assert.match(typeof r.msg === 'object' ? String(r.msg.reply) : '', /^5\.7\.1 Relaying denied/);
  });

  it('lets a local recipient through the early hook (CONT) and accepts it at the late hook (OK)', async () => {
    assert.equal((await rcpt('203.0.113.5', 'x@example.net', 'relay_rcpt')).rc, undefined);
    assert.equal((await rcpt('203.0.113.5', 'x@example.net', 'relay_accept')).rc, constants.ok);
  });

  it('accepts relaying for a relay network and for an authenticated user', async () => {
    assert.equal((await rcpt('192.0.2.77', 'x@other.example', 'relay_accept')).rc, constants.ok);
    assert.equal((await rcpt('203.0.113.5', 'x@other.example', 'relay_accept', { auth_user: 'alice' })).rc, constants.ok);
  });

  it('marks relay clients at connect (relaying flag and the suite note other plugins read)', async () => {
    const conn = fixtures.helpers.makeConnection({ ip: '192.0.2.1', silent: true });
    await fixtures.hooks.callConnect(plugin, conn, 'relay_connect');
    assert.equal(conn.relaying, true);
    assert.equal(sessionOf(conn).relayClient, true);
    const other = fixtures.helpers.makeConnection({ ip: '203.0.113.1', silent: true });
    await fixtures.hooks.callConnect(plugin, other, 'relay_connect');
    assert.equal(other.relaying, false);
  });

  it('registers its rcpt hooks at priority -100 and 100', () => {
    const priorities = new Map(hooks.filter((h) => h[0] === 'rcpt').map((h) => [h[1], h[2]]));
    assert.equal(priorities.get('relay_rcpt'), -100);
    assert.equal(priorities.get('relay_accept'), 100);
  });
});
