/**
 * A Haraka connection stub for unit tests of the hook wrapper and the core: what the suite reads of
 * a connection, with its log lines and results collected in `log`. `without` leaves out loggers
 * (not every caller's object has them).
 */
import type { HarakaConnection } from '../../plugins/shield/core/haraka';

export interface ConnLog {
  info: string[];
  error: string[];
  pluginErrors: string[];
  results: unknown[];
}

export function newConnLog(): ConnLog {
  return { info: [], error: [], pluginErrors: [], results: [] };
}

export function fakeConn(log: ConnLog = newConnLog(), without: ReadonlyArray<'loginfo' | 'logerror'> = []): HarakaConnection {
  const noop = () => undefined;
  const conn: Record<string, unknown> = {
    uuid: 'u',
    remote: { ip: '198.18.0.1', port: 1, host: null, is_private: false, is_local: false },
    local: { ip: '127.0.0.1', port: 25, host: 'h' },
    hello: { host: null, verb: null },
    tls: { enabled: false },
    notes: {},
    results: { add: (_p: unknown, o: unknown) => log.results.push(o), get: () => undefined },
    transaction: null,
    relaying: false,
    logdebug: noop,
    loginfo: (_p: unknown, m: string) => log.info.push(m),
    lognotice: noop,
    logwarn: noop,
    logerror: (_p: unknown, m: string) => log.error.push(m),
    respond: noop,
    disconnect: noop,
  };
  for (const k of without) delete conn[k];
  return conn as unknown as HarakaConnection;
}
