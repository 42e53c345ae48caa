/** The hook wrapper, more edges: a late rejection after a timeout, and connections without loggers. */
import assert from 'node:assert/strict';
import constants from 'haraka-constants';
import { DnsError, ShieldError } from '../../plugins/shield/core/errors';
import type { HarakaConnection } from '../../plugins/shield/core/haraka';
import { wrapHook, type HookContext } from '../../plugins/shield/core/hook';
import { reply } from '../../plugins/shield/core/policy';
import { sessionOf } from '../../plugins/shield/core/session';
import { fakeConn, newConnLog } from '../helpers/fake-conn';


function setup(budgetMs: number, without: Array<'loginfo' | 'logerror'> = []) {
  const log = newConnLog();
  const ctx: HookContext = {
    plugin: { name: 'shield.test', logerror: (m: unknown) => log.pluginErrors.push(String(m)) },
    check: 'test',
    budgetMs: () => budgetMs,
    onError: () => reply(451, '4.3.0', 'try later'),
  };
  return { log, ctx, conn: fakeConn(log, without) };
}

/** run the hook; resolves `settleMs` after the call with every next() call seen by then */
function run(h: ReturnType<typeof wrapHook>, conn: HarakaConnection, settleMs: number): Promise<Array<[number | undefined, unknown]>> {
  const calls: Array<[number | undefined, unknown]> = [];
  h((code?: number, msg?: unknown) => void calls.push([code, msg]), conn);
  return new Promise((resolve) => setTimeout(() => resolve(calls), settleMs));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('hook wrapper: edges (2)', () => {
  it('a body that rejects after its timeout: one err recorded, one error logged, next() once', async () => {
    const { log, ctx, conn } = setup(20);
    const calls = await run(
      wrapHook(ctx, 'rcpt', async () => {
        await sleep(60);
        throw new DnsError('DNS_SERVFAIL', 'x.example', 'A', 'SERVFAIL');
      }),
      conn,
      150,
    );
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.[0], constants.denysoft);
    assert.deepEqual(sessionOf(conn).evidence, [{ check: 'test', outcome: 'err', reason: 'hook_timeout', data: { hook: 'rcpt', message: 'hook rcpt ran past its budget of 20 ms' } }]);
    assert.deepEqual(log.results, [{ err: 'test:hook_timeout' }]);
    assert.deepEqual(log.error, ['rcpt: hook rcpt ran past its budget of 20 ms']);
    assert.deepEqual(log.pluginErrors, []);
  });

  it('a body that resolves after its timeout changes nothing either', async () => {
    const { log, ctx, conn } = setup(20);
    const calls = await run(
      wrapHook(ctx, 'rcpt', async () => {
        await sleep(60);
        return reply(550, '5.7.1', 'late');
      }),
      conn,
      150,
    );
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.[0], constants.denysoft);
    assert.deepEqual(log.info, ['rcpt: 451 4.3.0 try later']);
    assert.equal(sessionOf(conn).evidence.length, 1);
  });

  it('a connection without loginfo still gets its reply', async () => {
    const { log, ctx, conn } = setup(1000, ['loginfo']);
    const calls = await run(wrapHook(ctx, 'rcpt', () => reply(550, '5.7.1', 'no')), conn, 30);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.[0], constants.deny);
    assert.equal((calls[0]?.[1] as { reply: string }).reply, '5.7.1 no');
    assert.deepEqual(log.pluginErrors, []);
  });

  it('a connection without logerror: the error is still recorded and answered as onError says', async () => {
    const { log, ctx, conn } = setup(1000, ['logerror']);
    const calls = await run(
      wrapHook(ctx, 'helo', () => {
        throw new Error('boom');
      }),
      conn,
      30,
    );
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.[0], constants.denysoft, 'the tempfail onError gives, not next() with nothing');
    assert.equal(sessionOf(conn).evidence[0]?.reason, 'internal');
    assert.deepEqual(log.pluginErrors, []);
  });

  it('only an INTERNAL error is logged with the stack of its cause', async () => {
    const { log, ctx, conn } = setup(1000);
    await run(
      wrapHook(ctx, 'mail', () => {
        throw new ShieldError('STORE_UNAVAILABLE', 'redis down', true, { cause: new Error('ECONNREFUSED') });
      }),
      conn,
      30,
    );
    assert.deepEqual(log.error, ['mail: redis down']);
  });
});
