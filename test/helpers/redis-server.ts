/** A private redis-server on a free port, for tests that stop Redis under a running Haraka. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { freePort } from './haraka';

export class PrivateRedis {
  private constructor(readonly port: number, private child: ChildProcess | null) {}

  static async start(port?: number): Promise<PrivateRedis> {
    const p = port ?? (await freePort());
    const child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const r = new PrivateRedis(p, child);
    const deadline = Date.now() + 5000;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect(p, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
      if (ok) return r;
      if (Date.now() > deadline) throw new Error(`redis-server did not start on ${p}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  async stop(): Promise<void> {
    const c = this.child;
    this.child = null;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  }
}

/** ZCARD of a key on the machine's Redis (127.0.0.1:6379), through redis-cli */
export function zcard(key: string): number {
  return Number(execFileSync('redis-cli', ['-p', '6379', 'ZCARD', key]).toString().trim());
}
