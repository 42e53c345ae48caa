/**
 * The one wrapper every shield hook goes through. It guarantees that Haraka's `next()` is called
 * exactly once, that no rejection escapes (an unhandled rejection in a hook makes Haraka exit), and
 * that a hook answers within its time budget. An exception or a timeout is recorded as an `err`
 * outcome and answered with what the plugin says for errors (a tempfail or nothing), never with a
 * permanent rejection.
 */
import constants from 'haraka-constants';
import { asShieldError, HookTimeoutError, type ShieldError } from './errors';
import type { HarakaConnection, Next } from './haraka';
import { formatReply, toDsn, type Reply } from './policy';
import { record } from './results';

/**
 * What a hook body returns: nothing (let the next plugin decide), 'ok' (accept), `{ ok: text }`
 * (accept with a message, e.g. the host name for lookup_rdns), or a reply.
 */
export type HookOutcome = void | undefined | 'ok' | { readonly ok: string } | Reply;

export interface HookContext {
  readonly plugin: { name: string; logerror(...m: unknown[]): void };
  /** the check name errors are recorded under */
  readonly check: string;
  /** the time budget in ms (read per call, so a config reload applies) */
  budgetMs(): number;
  /** what to answer when the body throws or times out */
  onError(err: ShieldError, conn: HarakaConnection, hook: string): HookOutcome;
}

export function respond(next: Next, out: HookOutcome): void {
  if (out === undefined) return next();
  if (out === 'ok') return next(constants.ok);
  if ('ok' in out) return next(constants.ok, out.ok);
  const temp = out.code < 500;
  const code = out.disconnect ? (temp ? constants.denysoftdisconnect : constants.denydisconnect) : temp ? constants.denysoft : constants.deny;
  return next(code, toDsn(out));
}

export function wrapHook<A extends unknown[]>(
  ctx: HookContext,
  hook: string,
  body: (conn: HarakaConnection, ...args: A) => Promise<HookOutcome> | HookOutcome,
): (next: Next, conn: HarakaConnection, ...args: A) => void {
  return function shieldHook(next: Next, conn: HarakaConnection, ...args: A): void {
    let answered = false;
    const finish = (out: HookOutcome): void => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      if (out && out !== 'ok' && 'code' in out) conn.loginfo?.(ctx.plugin, `${hook}: ${formatReply(out)}`);
      try {
        respond(next, out);
      } catch (err) {
        ctx.plugin.logerror(`${hook}: next() threw: ${err instanceof Error ? err.stack : String(err)}`);
      }
    };
    const fail = (err: ShieldError): void => {
      if (answered) return;
      try {
        record(ctx.plugin, conn, { check: ctx.check, outcome: 'err', reason: err.code.toLowerCase(), data: { hook, message: err.message } });
        conn.logerror?.(ctx.plugin, `${hook}: ${err.message}${err.code === 'INTERNAL' && err.cause instanceof Error ? `\n${err.cause.stack}` : ''}`);
        finish(ctx.onError(err, conn, hook));
      } catch (inner) {
        ctx.plugin.logerror(`${hook}: error handler threw: ${String(inner)}`);
        finish(undefined);
      }
    };
    const budget = ctx.budgetMs();
    const timer = setTimeout(() => fail(new HookTimeoutError(hook, budget)), budget);
    let result: Promise<HookOutcome>;
    try {
      result = Promise.resolve(body(conn, ...args));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(finish, (err: unknown) => fail(asShieldError(err)));
  };
}
