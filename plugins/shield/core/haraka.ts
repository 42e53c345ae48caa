/**
 * The small part of Haraka's runtime objects that the suite touches, typed.
 * Haraka ships no type declarations; these interfaces describe Haraka 3.3.
 */

export type Next = (code?: number, msg?: unknown) => void;

export interface HarakaResults {
  add(plugin: { name: string } | HarakaPlugin, obj: Record<string, unknown>): void;
  get(plugin: string | { name: string }): Record<string, unknown> | undefined;
}

export interface HarakaNotes {
  [key: string]: unknown;
}

export interface HarakaAddress {
  user: string | null;
  host: string | null;
  original: string;
  format(): string;
  address(): string;
}

export interface HarakaTransaction {
  uuid: string;
  mail_from: HarakaAddress | null;
  rcpt_to: HarakaAddress[];
  notes: HarakaNotes;
  results: HarakaResults;
  add_header(key: string, value: string): void;
  add_leading_header(key: string, value: string): void;
  remove_header(key: string): void;
}

export interface HarakaConnection {
  uuid: string;
  remote: { ip: string; port: number; host: string | null; is_private: boolean; is_local: boolean };
  local: { ip: string; port: number; host: string };
  hello: { host: string | null; verb: string | null };
  tls: { enabled: boolean };
  notes: HarakaNotes;
  results: HarakaResults;
  transaction: HarakaTransaction | null;
  relaying: boolean;
  /** send a reply now (a DSN object carries its own code) */
  respond(code: number, msg: unknown, cb?: () => void): void;
  disconnect(): void;
  logdebug(plugin: unknown, ...msg: unknown[]): void;
  loginfo(plugin: unknown, ...msg: unknown[]): void;
  lognotice(plugin: unknown, ...msg: unknown[]): void;
  logwarn(plugin: unknown, ...msg: unknown[]): void;
  logerror(plugin: unknown, ...msg: unknown[]): void;
}

export interface HarakaConfig {
  get(name: string, type?: string | Record<string, unknown>, cb?: () => void): unknown;
  get(name: string, opts: Record<string, unknown>, cb?: () => void): unknown;
  getDir?(name: string, opts: Record<string, unknown>, cb: (err: Error | null, files: unknown) => void): void;
}

export interface HarakaServer {
  notes: HarakaNotes;
}

export interface HarakaPlugin {
  name: string;
  timeout?: number;
  config: HarakaConfig;
  register_hook(hook: string, method: string, priority?: number): void;
  inherits(name: string): void;
  logdebug(...msg: unknown[]): void;
  loginfo(...msg: unknown[]): void;
  lognotice(...msg: unknown[]): void;
  logwarn(...msg: unknown[]): void;
  logerror(...msg: unknown[]): void;
  logcrit(...msg: unknown[]): void;
  [method: string]: unknown;
}
