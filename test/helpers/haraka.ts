/**
 * Start a real Haraka process for integration tests: a fresh instance directory under the system
 * temp dir, this repo's compiled plugins linked into it, the PROXY protocol allowed from 127.0.0.0/8
 * (so clients can announce public addresses), the suite's DNS pointed at a fixture server and the
 * store at a test Redis key prefix. Every Haraka runs with the real-DNS guard preloaded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
const HARAKA_BIN = path.join(ROOT, 'node_modules', 'Haraka', 'bin', 'haraka');
const GUARD = path.join(ROOT, 'test', 'setup', 'no-real-dns.js');

export interface HarakaOptions {
  /** config/plugins, in order */
  plugins: string[];
  /** more config files: name -> content (e.g. 'shield.relay.ini') */
  files?: Record<string, string>;
  /** suite nameserver (the DNS fixture); default none reachable */
  dns?: string;
  /** Redis port for the shared store; null = memory backend */
  redisPort?: number | null;
  /** key prefix in Redis (default: unique per process) */
  prefix?: string;
  /** more shield.ini keys, by section (merged into the generated dns and store sections) */
  suite?: Record<string, Record<string, string>>;
  /** allow the PROXY protocol from 127.0.0.0/8 (default true) */
  proxy?: boolean;
  /** listen port (default: a free one) */
  port?: number;
  /** an existing instance directory (install test): only smtp.ini/connection.ini are written */
  dir?: string;
  env?: Record<string, string>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

let seq = 0;
export function uniquePrefix(): string {
  return `shield-test:${process.pid}:${++seq}:`;
}

export class HarakaProcess {
  output = '';
  private exited: Promise<number | null>;

  constructor(
    readonly dir: string,
    readonly port: number,
    readonly child: ChildProcess,
  ) {
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitFor(re: RegExp, timeoutMs = 15000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.output)) {
      if (!this.running) throw new Error(`Haraka exited before ${re}:\n${this.output.slice(-4000)}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}:\n${this.output.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<number | null> {
    if (!this.running) return this.child.exitCode;
    this.child.kill('SIGINT');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 8000);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }

  /** SIGKILL, as a crash would */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

function writeInstance(dir: string, port: number, opts: HarakaOptions): void {
  const cfg = path.join(dir, 'config');
  fs.mkdirSync(cfg, { recursive: true });
  let connIni = fs.readFileSync(path.join(ROOT, 'config', 'connection.ini'), 'utf8');
  if (opts.proxy !== false) connIni = connIni.replace(/^hosts\[\]\s*=\s*$/m, 'hosts[] = 127.0.0.0/8');
  fs.writeFileSync(path.join(cfg, 'connection.ini'), connIni);
  fs.writeFileSync(path.join(cfg, 'smtp.ini'), `listen=127.0.0.1:${port}\nnodes=0\npublic_ip=127.0.0.1\n`);
  fs.writeFileSync(path.join(cfg, 'log.ini'), '[main]\nlevel=info\ntimestamps=false\nformat=default\n');
  if (opts.dir) return;

  fs.writeFileSync(path.join(cfg, 'plugins'), `${opts.plugins.join('\n')}\n`);
  const store = opts.redisPort === null ? 'memory' : 'redis';
  const suite: Record<string, Record<string, string>> = {
    dns: { nameservers: opts.dns ?? '127.0.0.1:9', timeout: '500ms', tries: '2' },
    store: { backend: store, prefix: opts.prefix ?? uniquePrefix() },
  };
  for (const [section, keys] of Object.entries(opts.suite ?? {})) suite[section] = { ...suite[section], ...keys };
  const ini = Object.entries(suite).map(([section, keys]) => `[${section}]\n${Object.entries(keys).map(([k, v]) => `${k} = ${v}\n`).join('')}`);
  fs.writeFileSync(path.join(cfg, 'shield.ini'), ini.join('\n'));
  fs.writeFileSync(path.join(cfg, 'redis.ini'), `[server]\nhost = 127.0.0.1\nport = ${opts.redisPort ?? 6379}\n`);
  // no local domains unless a test says so (the repo's own file lists example.com)
  fs.writeFileSync(path.join(cfg, 'shield.relay.domains'), '');
  for (const [name, content] of Object.entries(opts.files ?? {})) fs.writeFileSync(path.join(cfg, name), content);

  const plugins = path.join(dir, 'plugins');
  fs.mkdirSync(plugins, { recursive: true });
  for (const f of fs.readdirSync(path.join(ROOT, 'plugins'))) {
    if (/^shield\..*\.js$/.test(f) || f === 'shield') fs.symlinkSync(path.join(ROOT, 'plugins', f), path.join(plugins, f));
  }
  for (const f of fs.readdirSync(path.join(ROOT, 'test', 'fixtures', 'plugins'))) {
    fs.symlinkSync(path.join(ROOT, 'test', 'fixtures', 'plugins', f), path.join(plugins, f));
  }
}

export async function startHaraka(opts: HarakaOptions): Promise<HarakaProcess> {
  if (!fs.existsSync(path.join(ROOT, 'plugins', 'shield.relay.js'))) throw new Error('plugins are not built: run npm run build');
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'shield-haraka-'));
  const port = opts.port ?? (await freePort());
  writeInstance(dir, port, opts);
  const child = spawn(process.execPath, [HARAKA_BIN, '-c', dir], {
    cwd: dir,
    env: {
      ...process.env,
      NODE_OPTIONS: `--require ${GUARD}`,
      YES_REALLY_DO_DISCARD: '1',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const h = new HarakaProcess(dir, port, child);
  await h.waitFor(/Listening on/);
  // "Listening on" comes before init_master hooks finish; wait for the socket to take connections
  await new Promise<void>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve();
    });
    s.on('error', reject);
  });
  return h;
}
