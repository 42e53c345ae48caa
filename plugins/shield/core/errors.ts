/**
 * Coded error classes for the whole suite. Every infrastructure fault a check can meet is one of
 * these, so the policy can turn it into an `err` outcome (defer or skip by config) and never into a
 * permanent rejection.
 */

export type ShieldErrorCode =
  | 'CONFIG' // a config file, section or key is invalid
  | 'DNS_TIMEOUT' // no answer from any nameserver within timeout x tries
  | 'DNS_SERVFAIL' // the nameserver said it could not answer
  | 'DNS_REFUSED' // the nameserver refused to answer
  | 'DNS_FORMAT' // the nameserver found our question malformed or not implemented (FORMERR, NOTIMP)
  | 'DNS_NETWORK' // socket-level failure talking to the nameserver, or a TCP answer that is not ours
  | 'DNS_BAD_NAME' // a name that cannot be a query (a label over 63 octets, a name over 253): never sent
  | 'STORE_UNAVAILABLE' // the shared store (Redis) is down or not ready
  | 'STORE_TIMEOUT' // the shared store did not answer in time
  | 'HOOK_TIMEOUT' // a hook ran past its time budget
  | 'INTERNAL'; // a bug: an exception nobody expected

export class ShieldError extends Error {
  readonly code: ShieldErrorCode;
  /** true when retrying later may succeed: the fault is in infrastructure, not in the input */
  readonly temporary: boolean;
  constructor(code: ShieldErrorCode, message: string, temporary = true, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ShieldError';
    this.code = code;
    this.temporary = temporary;
  }
}

export class ConfigError extends ShieldError {
  readonly file: string;
  readonly section: string | undefined;
  readonly key: string | undefined;
  constructor(file: string, section: string | undefined, key: string | undefined, problem: string) {
    const where = [file, section ? `[${section}]` : '', key ?? ''].filter(Boolean).join(' ');
    super('CONFIG', `${where}: ${problem}`, false);
    this.name = 'ConfigError';
    this.file = file;
    this.section = section;
    this.key = key;
  }
}

export class DnsError extends ShieldError {
  readonly qname: string;
  readonly qtype: string;
  constructor(code: Extract<ShieldErrorCode, `DNS_${string}`>, qname: string, qtype: string, detail?: string) {
    // a name that cannot be asked will not become askable by retrying
    super(code, `DNS ${qtype} ${qname}: ${detail ?? code}`, code !== 'DNS_BAD_NAME');
    this.name = 'DnsError';
    this.qname = qname;
    this.qtype = qtype;
  }
}

export class StoreError extends ShieldError {
  constructor(code: 'STORE_UNAVAILABLE' | 'STORE_TIMEOUT', message: string, cause?: unknown) {
    super(code, message, true, { cause });
    this.name = 'StoreError';
  }
}

export class HookTimeoutError extends ShieldError {
  constructor(hook: string, budgetMs: number) {
    super('HOOK_TIMEOUT', `hook ${hook} ran past its budget of ${budgetMs} ms`);
    this.name = 'HookTimeoutError';
  }
}

/** Any thrown value as a ShieldError (unknown exceptions become INTERNAL). */
export function asShieldError(err: unknown): ShieldError {
  if (err instanceof ShieldError) return err;
  return new ShieldError('INTERNAL', errorMessage(err), true, { cause: err });
}

/**
 * The message of any thrown value. Plugin code runs in Haraka's vm sandbox, whose Error is not this
 * realm's, so `instanceof Error` is not a reliable test across that line.
 */
export function errorMessage(err: unknown): string {
  if (err && typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string') return (err as { message: string }).message;
  return String(err);
}
