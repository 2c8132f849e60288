/**
 * Running a predictor over a toy-format set as a child process, under a wall-clock timeout.
 * An entry is either one of moodlsr's own methods (run through the compiled CLI's `predict`) or any shell
 * command — a `run_*.sh` script, a `docker run …` line — with placeholders {in}, {out}, {task}, {region};
 * a command that names neither {in} nor {out} gets the two folders appended, as the MOOD scripts expect.
 */
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { cliEntryPath } from '../../src/package-root.js';
import type { MoodRegion, MoodTask } from '../../src/mood/predictor.js';

export type Entry =
  | { readonly name: string; readonly kind: 'method'; readonly method: string; readonly weights?: string; readonly engine?: string }
  | { readonly name: string; readonly kind: 'command'; readonly command: string };

export interface RunOutcome {
  readonly seconds: number;
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  /** Last lines of the command's stderr/stdout, for the log. */
  readonly tail: string;
}

/** Parses "NAME=COMMAND" (a shell command) or a bare method name ("zscore", "zscore@weights/dir"). */
export function parseEntry(text: string, kind: 'method' | 'command'): Entry {
  if (kind === 'method') {
    // split at the first @ only: the weights path may hold more
    const at = text.indexOf('@');
    const method = at < 0 ? text : text.slice(0, at);
    const weights = at < 0 ? '' : text.slice(at + 1);
    if (!method) throw new Error(`--method needs a name, got "${text}"`);
    return weights ? { name: method, kind, method, weights } : { name: method, kind, method };
  }
  const eq = text.indexOf('=');
  if (eq <= 0) throw new Error(`--command must look like NAME=COMMAND, got "${text}"`);
  return { name: text.slice(0, eq).trim(), kind, command: text.slice(eq + 1) };
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function commandLine(entry: Entry, io: { inDir: string; outDir: string; task: MoodTask; region: MoodRegion; seed: number }): { file: string; args: string[] } {
  if (entry.kind === 'method') {
    const args = [cliEntryPath(), 'predict', '--task', io.task, '--region', io.region, '-i', io.inDir, '-o', io.outDir, '--method', entry.method, '--seed', String(io.seed)];
    if (entry.weights) args.push('--weights', entry.weights);
    if (entry.engine) args.push('--engine', entry.engine);
    return { file: process.execPath, args };
  }
  const filled = entry.command
    .replaceAll('{in}', shellQuote(io.inDir))
    .replaceAll('{out}', shellQuote(io.outDir))
    .replaceAll('{task}', io.task)
    .replaceAll('{region}', io.region);
  const hasFolders = entry.command.includes('{in}') || entry.command.includes('{out}');
  const script = hasFolders ? filled : `${filled} ${shellQuote(io.inDir)} ${shellQuote(io.outDir)}`;
  return { file: '/bin/sh', args: ['-c', script] };
}

/** setTimeout fires at once for delays above 2^31 − 1 ms (~24.8 days): clamp, so a huge timeout means "no limit". */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long output pipes may stay open after the command exited. */
const PIPE_GRACE_MS = 2000;

export function timerDelayMs(seconds: number): number {
  if (!(seconds > 0)) throw new RangeError(`timeout must be a positive number of seconds, got ${seconds}`);
  return Math.min(MAX_TIMER_MS, Math.ceil(seconds * 1000));
}

/** Runs one entry for one task into a fresh output folder; kills the whole process group on timeout. */
export async function runEntry(
  entry: Entry,
  io: { inDir: string; outDir: string; task: MoodTask; region: MoodRegion; seed: number; timeoutSeconds: number },
): Promise<RunOutcome> {
  const delayMs = timerDelayMs(io.timeoutSeconds);
  await rm(io.outDir, { recursive: true, force: true });
  await mkdir(io.outDir, { recursive: true });
  const { file, args } = commandLine(entry, io);
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let tail = '';
    const keep = (chunk: Buffer): void => {
      tail = (tail + chunk.toString('utf8')).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, delayMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${entry.name}: cannot start ${file}: ${err.message}`));
    });
    // A process that left the group (setsid, a daemon) can hold the pipes open after the command ended:
    // stop waiting for them a little after the command's own exit.
    let pipeGrace: NodeJS.Timeout | undefined;
    child.on('exit', () => {
      pipeGrace = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, PIPE_GRACE_MS);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      clearTimeout(pipeGrace);
      resolvePromise({ seconds: (performance.now() - started) / 1000, exitCode: code, timedOut, tail });
    });
  });
}
