/**
 * Runs a child process without blocking the test worker's event loop. Vitest's worker talks to the main
 * process over RPC with a 60 s timeout; a spawnSync that runs for minutes starves that channel and the
 * run ends with "Timeout calling onTaskUpdate" even though every test passed.
 */
import { spawn } from 'node:child_process';

export interface ChildResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runChild(command: string, args: readonly string[], options: { cwd?: string } = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

/** Like runChild, but rejects with the child's stderr when it exits non-zero. */
export async function runChildOk(command: string, args: readonly string[], options: { cwd?: string } = {}): Promise<ChildResult> {
  const result = await runChild(command, args, options);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}:\n${result.stderr}`);
  return result;
}
