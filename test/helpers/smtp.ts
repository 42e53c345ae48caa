/**
 * A real SMTP client on a raw socket: binds a chosen 127.0.0.x source address, can announce a
 * public-looking client address with the HAProxy PROXY protocol (v1), and returns full replies so
 * tests assert codes and enhanced status codes.
 */
import assert from 'node:assert/strict';
import net from 'node:net';

export interface SmtpReply {
  code: number;
  lines: string[];
  /** the whole reply, lines joined with \n, code included: "550 5.7.1 Relaying denied..." */
  text: string;
}

export interface ConnectOptions {
  port: number;
  host?: string;
  /** source address on the loopback range, e.g. 127.0.0.7 */
  localAddress?: string;
  /** the client address to announce with PROXY (IPv4 or IPv6) */
  proxyFrom?: string;
  /** the server port to announce with PROXY (default 25; 587 for submission) */
  proxyPort?: number;
  timeoutMs?: number;
}

export class SmtpClient {
  private buf = '';
  private waiters: Array<() => void> = [];
  private closed = false;
  greeting!: SmtpReply;

  private constructor(private readonly sock: net.Socket, private readonly timeoutMs: number) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async connect(opts: ConnectOptions): Promise<SmtpClient> {
    const sock = net.connect({ port: opts.port, host: opts.host ?? '127.0.0.1', localAddress: opts.localAddress });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', reject);
    });
    const c = new SmtpClient(sock, opts.timeoutMs ?? 10000);
    if (opts.proxyFrom) {
      const v6 = net.isIPv6(opts.proxyFrom);
      const dst = v6 ? '2001:2::25' : '198.18.255.25';
      sock.write(`PROXY ${v6 ? 'TCP6' : 'TCP4'} ${opts.proxyFrom} ${dst} ${40000 + Math.floor(Math.random() * 20000)} ${opts.proxyPort ?? 25}\r\n`);
    }
    c.greeting = await c.read();
    return c;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }

  /** read one complete (possibly multi-line) reply */
  async read(): Promise<SmtpReply> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        const lines = m[0].split('\r\n').filter(Boolean);
        return { code: Number(lines[lines.length - 1]?.slice(0, 3)), lines, text: lines.join('\n') };
      }
      if (this.closed) throw new Error(`connection closed; unparsed: ${JSON.stringify(this.buf)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no SMTP reply within ${this.timeoutMs} ms; buffer: ${JSON.stringify(this.buf)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async cmd(line: string): Promise<SmtpReply> {
    this.sock.write(`${line}\r\n`);
    return this.read();
  }

  /** AUTH PLAIN in one line */
  auth(user: string, pass: string): Promise<SmtpReply> {
    return this.cmd(`AUTH PLAIN ${Buffer.from(`\0${user}\0${pass}`).toString('base64')}`);
  }

  /** DATA, the message, and the final reply */
  async data(message: string): Promise<SmtpReply> {
    const r = await this.cmd('DATA');
    if (r.code !== 354) return r;
    const body = message.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    this.sock.write(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.\r\n`);
    return this.read();
  }

  async quit(): Promise<void> {
    if (!this.closed) {
      try {
        await this.cmd('QUIT');
      } catch {
        /* already gone */
      }
    }
    this.sock.destroy();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

/** A whole session: EHLO, MAIL, each RCPT; returns every reply. Closes the connection. */
export async function session(
  opts: ConnectOptions & { helo?: string; from: string; rcpts: string[]; auth?: [string, string]; message?: string },
): Promise<{ greeting: SmtpReply; ehlo: SmtpReply; auth?: SmtpReply; mail: SmtpReply; rcpts: SmtpReply[]; data?: SmtpReply }> {
  const c = await SmtpClient.connect(opts);
  try {
    const ehlo = await c.cmd(`EHLO ${opts.helo ?? 'client.example.org'}`);
    const auth = opts.auth ? await c.auth(opts.auth[0], opts.auth[1]) : undefined;
    const mail = await c.cmd(`MAIL FROM:<${opts.from}>`);
    const rcpts: SmtpReply[] = [];
    for (const r of opts.rcpts) rcpts.push(await c.cmd(`RCPT TO:${r.startsWith('<') ? r : `<${r}>`}`));
    const data = opts.message && rcpts.some((r) => r.code === 250) ? await c.data(opts.message) : undefined;
    return { greeting: c.greeting, ehlo, auth, mail, rcpts, data };
  } finally {
    await c.quit();
  }
}

let source = 10;
/** a distinct loopback source address for each new connection (127.0.0.10 .. 127.0.0.250) */
export function nextSource(): string {
  source = source >= 250 ? 10 : source + 1;
  return `127.0.0.${source}`;
}

/** assert a reply's code and enhanced status: "550 5.7.1 ..." */
export function assertReply(r: SmtpReply | undefined, code: number, status: string, what: string): void {
  assert.ok(r, `${what}: no reply`);
  assert.equal(r.code, code, `${what}: ${r.text}`);
  assert.match(r.text, new RegExp(`^${code} ${status.replace(/\./g, '\\.')} `), `${what}: ${r.text}`);
}

/** connect (announcing `proxyFrom`), read the greeting, and leave: how a blocked client is refused */
export async function greet(port: number, proxyFrom: string): Promise<SmtpReply> {
  const c = await SmtpClient.connect({ port, localAddress: nextSource(), proxyFrom });
  await c.quit();
  return c.greeting;
}

/** connect, announce `proxyFrom` with PROXY and hang up `afterMs` later, without reading anything */
export async function announceAndHangUp(port: number, proxyFrom: string, afterMs: number): Promise<void> {
  const s = net.connect({ port, host: '127.0.0.1', localAddress: nextSource() });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  s.write(`PROXY TCP4 ${proxyFrom} 198.18.255.25 40000 25\r\n`);
  await new Promise((r) => setTimeout(r, afterMs));
  s.destroy();
}
