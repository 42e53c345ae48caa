/** The hook wrapper: next() exactly once, errors and timeouts caught and recorded. */
import assert from 'node:assert/strict';
import constants from 'haraka-constants';
import { ShieldError } from '../../plugins/shield/core/errors';
import type { HarakaConnection } from '../../plugins/shield/core/haraka';
import { wrapHook, type HookContext } from '../../plugins/shield/core/hook';
import { reply } from '../../plugins/shield/core/policy';
import { sessionOf } from '../../plugins/shield/core/session';
import { fakeConn } from '../helpers/fake-conn';


function ctx(budgetMs: number, onError: HookContext['onError'] = () => reply(451, '4.3.0', 'try later')): HookContext {
  return { plugin: { name: 'shield.test', logerror: () => undefined }, check: 'test', budgetMs: () => budgetMs, onError };
}

function call(h: ReturnType<typeof wrapHook>, conn = fakeConn()): Promise<{ calls: Array<[number | undefined, unknown]>; conn: HarakaConnection }> {
  return new Promise((resolve) => {
    const calls: Array<[number | undefined, unknown]> = [];
    h((code?: number, msg?: unknown) => {
      calls.push([code, msg]);
      // give a late second answer the chance to show up
      setTimeout(() => resolve({ calls, conn }), 80);
    }, conn);
  });
}

describe('hook wrapper', () => {
  it('passes a reply to next() as a DSN with our code and status', async () => {
    const { calls } = await call(wrapHook(ctx(1000), 'rcpt', async () => reply(550, '5.7.1', 'no')));
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.[0], constants.deny);
    const dsn = calls[0]?.[1] as { code: number; reply: string };
    assert.equal(dsn.code, 550);
    assert.equal(dsn.reply, '5.7.1 no');
  });

  it('maps 4xx to DENYSOFT, disconnecting replies to *DISCONNECT, ok to OK, nothing to CONT', async () => {
    assert.equal((await call(wrapHook(ctx(1000), 'x', () => reply(451, '4.7.1', 'later')))).calls[0]?.[0], constants.denysoft);
    assert.equal((await call(wrapHook(ctx(1000), 'x', () => reply(421, '4.7.0', 'bye', true)))).calls[0]?.[0], constants.denysoftdisconnect);
    assert.equal((await call(wrapHook(ctx(1000), 'x', () => reply(554, '5.7.1', 'bye', true)))).calls[0]?.[0], constants.denydisconnect);
    assert.equal((await call(wrapHook(ctx(1000), 'x', () => 'ok'))).calls[0]?.[0], constants.ok);
    assert.deepEqual((await call(wrapHook(ctx(1000), 'x', () => ({ ok: 'host.example' })))).calls[0], [constants.ok, 'host.example']);
    assert.equal((await call(wrapHook(ctx(1000), 'x', () => undefined))).calls[0]?.[0], undefined);
  });

  it('a throwing body (sync or async) is recorded as err and answered by onError, once', async () => {
    for (const body of [
      () => {
        throw new Error('boom');
      },
      async () => {
        throw new ShieldError('DNS_TIMEOUT', 'slow');
      },
    ]) {
      const { calls, conn } = await call(wrapHook(ctx(1000), 'rcpt', body));
      assert.equal(calls.length, 1);
      assert.equal(calls[0]?.[0], constants.denysoft);
      const ev = sessionOf(conn).evidence[0];
      assert.equal(ev?.outcome, 'err');
      assert.match(ev?.reason ?? '', /^(internal|dns_timeout)$/);
    }
  });

  it('a body past its budget is answered by onError, and its late answer is dropped', async () => {
    const t0 = Date.now();
    const { calls, conn } = await call(
      wrapHook(ctx(50, () => undefined), 'connect', () => new Promise((r) => setTimeout(() => r(reply(550, '5.7.1', 'late')), 100))),
    );
    assert.ok(Date.now() - t0 < 500);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.[0], undefined, 'timeout -> onError -> CONT, not the late 550');
    assert.equal(sessionOf(conn).evidence[0]?.reason, 'hook_timeout');
  });

  it('an onError that throws still calls next() once', async () => {
    const { calls } = await call(
      wrapHook(
        ctx(1000, () => {
          throw new Error('worse');
        }),
        'x',
        () => {
          throw new Error('bad');
        },
      ),
    );
    assert.equal(calls.length, 1);
  });
});
