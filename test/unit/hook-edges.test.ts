/** The hook wrapper: what it logs and records, and how each outcome reaches Haraka. */
import assert from 'node:assert/strict';
import constants from 'haraka-constants';
import { DnsError, ShieldError } from '../../plugins/shield/core/errors';
import type { HarakaConnection } from '../../plugins/shield/core/haraka';
import { respond, wrapHook, type HookContext } from '../../plugins/shield/core/hook';
import { reply } from '../../plugins/shield/core/policy';
import { sessionOf } from '../../plugins/shield/core/session';
import { fakeConn, newConnLog } from '../helpers/fake-conn';


function setup(budgetMs: number, onError: HookContext['onError'] = () => reply(451, '4.3.0', 'try later')) {
  const log = newConnLog();
  const ctx: HookContext = { plugin: { name: 'shield.test', logerror: (m: unknown) => log.pluginErrors.push(String(m)) }, check: 'test', budgetMs: () => budgetMs, onError };
  return { log, ctx, conn: fakeConn(log) };
}

function run(h: ReturnType<typeof wrapHook>, conn: HarakaConnection, next?: (code?: number, msg?: unknown) => void): Promise<Array<[number | undefined, unknown]>> {
  return new Promise((resolve) => {
    const calls: Array<[number | undefined, unknown]> = [];
    h((code?: number, msg?: unknown) => {
      calls.push([code, msg]);
      setTimeout(() => resolve(calls), 30);
      next?.(code, msg);
    }, conn);
  });
}

describe('hook wrapper: respond()', () => {
  const seen = (out: Parameters<typeof respond>[1]) => {
    const calls: unknown[][] = [];
    respond((...a: unknown[]) => void calls.push(a), out);
    return calls;
  };

  it('nothing: next() with no arguments; ok: OK; { ok: text }: OK with the text', () => {
    assert.deepEqual(seen(undefined), [[]]);
    assert.deepEqual(seen('ok'), [[constants.ok]]);
    assert.deepEqual(seen({ ok: 'mx.example.com' }), [[constants.ok, 'mx.example.com']]);
  });

  it('5xx DENY, 4xx DENYSOFT, and their DISCONNECT forms; the DSN carries code, status and text', () => {
    const deny = seen(reply(550, '5.7.1', 'no'))[0] as [number, { code: number; reply: string }];
    assert.equal(deny[0], constants.deny);
    assert.equal(deny[1].code, 550);
    assert.equal(deny[1].reply, '5.7.1 no');
    const soft = seen(reply(499, '4.7.1', 'edge'))[0] as [number, { code: number; reply: string }];
    assert.equal(soft[0], constants.denysoft, '499 is temporary');
    assert.equal(soft[1].reply, '4.7.1 edge');
    assert.equal((seen(reply(500, '5.5.1', 'edge'))[0] as unknown[])[0], constants.deny, '500 is permanent');
    assert.equal((seen(reply(421, '4.7.0', 'bye', true))[0] as unknown[])[0], constants.denysoftdisconnect);
    assert.equal((seen(reply(554, '5.7.1', 'bye', true))[0] as unknown[])[0], constants.denydisconnect);
  });
});

describe('hook wrapper: logging and recording', () => {
  it('a reply is logged at info with the hook name and the whole reply; nothing else is', async () => {
    const { log, ctx, conn } = setup(1000);
    await run(wrapHook(ctx, 'rcpt', () => reply(550, '5.7.1', 'no such luck')), conn);
    assert.deepEqual(log.info, ['rcpt: 550 5.7.1 no such luck']);
    const b = setup(1000);
    await run(wrapHook(b.ctx, 'rcpt', () => 'ok'), b.conn);
    await run(wrapHook(b.ctx, 'rcpt', () => ({ ok: 'x' })), b.conn);
    await run(wrapHook(b.ctx, 'rcpt', () => undefined), b.conn);
    assert.deepEqual(b.log.info, []);
  });

  it('a ShieldError is recorded as err under the check, with the hook and message; logged without a stack', async () => {
    const { log, ctx, conn } = setup(1000);
    const calls = await run(
      wrapHook(ctx, 'helo', async () => {
        throw new DnsError('DNS_SERVFAIL', 'x.example', 'A', 'SERVFAIL');
      }),
      conn,
    );
    assert.equal(calls[0]?.[0], constants.denysoft);
    assert.deepEqual(sessionOf(conn).evidence, [{ check: 'test', outcome: 'err', reason: 'dns_servfail', data: { hook: 'helo', message: 'DNS A x.example: SERVFAIL' } }]);
    assert.deepEqual(log.results, [{ err: 'test:dns_servfail' }]);
    assert.deepEqual(log.error, ['helo: DNS A x.example: SERVFAIL']);
  });

  it('an unexpected exception is INTERNAL, logged with its stack', async () => {
    const { log, ctx, conn } = setup(1000);
    await run(
      wrapHook(ctx, 'mail', () => {
        throw new TypeError('cannot read x of undefined');
      }),
      conn,
    );
    assert.equal(sessionOf(conn).evidence[0]?.reason, 'internal');
    assert.equal(log.error.length, 1);
    assert.match(log.error[0] as string, /^mail: cannot read x of undefined\nTypeError: cannot read x of undefined\n\s+at /);
    const b = setup(1000);
    await run(
      wrapHook(b.ctx, 'mail', () => {
        throw 'a string'; // eslint-disable-line no-throw-literal
      }),
      b.conn,
    );
    assert.deepEqual(b.log.error, ['mail: a string'], 'no stack to show');
  });

  it('onError decides the answer, and is told the error, the connection and the hook', async () => {
    const seen: Array<[string, string, boolean]> = [];
    const { ctx, conn } = setup(1000, (err, c, hook) => {
      seen.push([err.code, hook, c === conn]);
      return undefined;
    });
    const calls = await run(
      wrapHook(ctx, 'data_post', () => {
        throw new ShieldError('STORE_TIMEOUT', 'slow redis');
      }),
      conn,
    );
    assert.deepEqual(seen, [['STORE_TIMEOUT', 'data_post', true]]);
    assert.deepEqual(calls, [[undefined, undefined]]);
  });

  it('a timeout names the hook and its budget', async () => {
    const { log, ctx, conn } = setup(40, () => undefined);
    await run(wrapHook(ctx, 'connect', () => new Promise(() => undefined)), conn);
    assert.deepEqual(sessionOf(conn).evidence, [{ check: 'test', outcome: 'err', reason: 'hook_timeout', data: { hook: 'connect', message: 'hook connect ran past its budget of 40 ms' } }]);
    assert.deepEqual(log.error, ['connect: hook connect ran past its budget of 40 ms']);
  });

  it('a fast answer clears the budget timer: no timeout recorded later', async () => {
    const { ctx, conn } = setup(20);
    await run(wrapHook(ctx, 'rcpt', async () => undefined), conn);
    await new Promise((r) => setTimeout(r, 40));
    assert.deepEqual(sessionOf(conn).evidence, []);
  });

  it('a next() that throws is logged, not thrown', async () => {
    const { log, ctx, conn } = setup(1000);
    await run(wrapHook(ctx, 'rcpt', () => undefined), conn, () => {
      throw new Error('haraka broke');
    });
    assert.equal(log.pluginErrors.length, 1);
    assert.match(log.pluginErrors[0] as string, /^rcpt: next\(\) threw: Error: haraka broke\n\s+at /);
  });

  it('an onError that throws is logged and the hook continues (next() with nothing)', async () => {
    const { log, ctx, conn } = setup(1000, () => {
      throw new Error('worse');
    });
    const calls = await run(
      wrapHook(ctx, 'x', () => {
        throw new Error('bad');
      }),
      conn,
    );
    assert.deepEqual(calls, [[undefined, undefined]]);
    assert.deepEqual(log.pluginErrors, ['x: error handler threw: Error: worse']);
  });
});
