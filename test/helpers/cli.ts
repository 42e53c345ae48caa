/** Run the built haraka-shield CLI as a child process. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './haraka';

export const CLI = path.join(ROOT, 'bin', 'haraka-shield.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 20000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** run it and insist on success */
export async function cli(args: string[]): Promise<string> {
  const r = await runCli(args);
  if (r.code !== 0) throw new Error(`haraka-shield ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}
