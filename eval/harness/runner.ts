/**
 * Running a predictor over a toy-format set as a child process, under a wall-clock timeout.
 * An entry is either one of moodlsr's own methods (run through the compiled CLI's `predict`) or any shell
 * command — a `run_*.sh` script, a `docker run …` line — with placeholders {in}, {out}, {task}, {region};
 * a command that names neither {in} nor {out} gets the two folders appended, as the MOOD scripts expect.
 *
 * A method entry may score both tasks in one run (`predict --task sample,pixel`, each case read once),
 * writing OUT/sample and OUT/pixel; a command scores one task per run.
 */
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { cliEntryPath } from '../../src/package-root.js';
import type { MoodRegion, MoodTask } from '../../src/mood/predictor.js';
import { MOOD_TASKS, taskOutputDir } from '../../src/mood/tasks.js';
import { parseSettingList } from '../../src/score/settings.js';

export type Entry =
  | { readonly name: string; readonly kind: 'method'; readonly method: string; readonly weights?: string; readonly engine?: string; readonly settings?: Readonly<Record<string, string>> }
  | { readonly name: string; readonly kind: 'command'; readonly command: string };

/** What one run scores: one task, or 'both' in one pass (method entries only; outputs in OUT/sample and OUT/pixel). */
export type RunTask = MoodTask | 'both';

/** The run's folders and settings; `timeoutSeconds` is per task, so a run of both tasks gets twice it. */
export interface RunIo {
  readonly inDir: string;
  readonly outDir: string;
  readonly task: RunTask;
  readonly region: MoodRegion;
  readonly seed: number;
}

export interface RunOutcome {
  /** Wall-clock seconds of the whole run: with sharedRun, of both tasks together (not split between them). */
  readonly seconds: number;
  /** True when this one run scored both tasks. */
  readonly sharedRun: boolean;
  /** The wall-clock limit the run ran under, seconds. */
  readonly limitSeconds: number;
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  /** The signal that ended the command, if one did (the timeout's SIGKILL, an OOM kill, …). */
  readonly signal?: string | null;
  /** Last lines of the command's stderr/stdout, for the log. */
  readonly tail: string;
}

/**
 * Parses "NAME=COMMAND" (a shell command) or a method: "zscore", "zscore@weights/dir", or with scoring
 * options "lsr{lambdaP=inf,weighting=mean}@weights/dir" (passed to predict as --set; the entry's name
 * keeps the braces, so variants of one method stand side by side).
 */
export function parseEntry(text: string, kind: 'method' | 'command'): Entry {
  if (kind === 'method') {
    const braced = /^([^@{}]*)\{([^}]*)\}(.*)$/.exec(text);
    const head = braced ? braced[1]! + braced[3]! : text;
    // split at the first @ only: the weights path may hold more
    const at = head.indexOf('@');
    const method = at < 0 ? head : head.slice(0, at);
    const weights = at < 0 ? '' : head.slice(at + 1);
    if (!method) throw new Error(`--method needs a name, got "${text}"`);
    if (braced && braced[3] !== '' && !braced[3]!.startsWith('@')) throw new Error(`--method: settings {…} go right after the name, got "${text}"`);
    const settings = braced ? parseSettingList(braced[2]!) : undefined;
    const name = braced ? `${method}{${braced[2]}}` : method;
    return { name, kind, method, ...(weights ? { weights } : {}), ...(settings ? { settings } : {}) };
  }
  const eq = text.indexOf('=');
  if (eq <= 0) throw new Error(`--command must look like NAME=COMMAND, got "${text}"`);
  return { name: text.slice(0, eq).trim(), kind, command: text.slice(eq + 1) };
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The tasks a run scores, in the order predict scores them. */
export function runTasks(task: RunTask): readonly MoodTask[] {
  return task === 'both' ? MOOD_TASKS : [task];
}

export function commandLine(entry: Entry, io: RunIo): { file: string; args: string[] } {
  if (entry.kind === 'method') {
    const args = [cliEntryPath(), 'predict', '--task', runTasks(io.task).join(','), '--region', io.region, '-i', io.inDir, '-o', io.outDir, '--method', entry.method, '--seed', String(io.seed)];
    if (entry.weights) args.push('--weights', entry.weights);
    if (entry.engine) args.push('--engine', entry.engine);
    for (const [key, value] of Object.entries(entry.settings ?? {})) args.push('--set', `${key}=${value}`);
    return { file: process.execPath, args };
  }
  if (io.task === 'both') throw new Error(`${entry.name}: a command entry scores one task per run, not both`);
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

/**
 * Runs one entry for one task, or a method entry for both, into fresh output folders; kills the whole
 * process group on timeout. A run of both tasks may take the time of two runs (timeoutSeconds each).
 */
export async function runEntry(entry: Entry, io: RunIo & { readonly timeoutSeconds: number }): Promise<RunOutcome> {
  const tasks = runTasks(io.task);
  const limitSeconds = io.timeoutSeconds * tasks.length;
  const delayMs = timerDelayMs(limitSeconds);
  const { file, args } = commandLine(entry, io);
  await rm(io.outDir, { recursive: true, force: true });
  await mkdir(io.outDir, { recursive: true });
  // the task folders exist even when the run dies at once, so that each is scored as all-missing
  if (io.task === 'both') for (const task of tasks) await mkdir(taskOutputDir(io.outDir, task), { recursive: true });
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
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(pipeGrace);
      resolvePromise({ seconds: (performance.now() - started) / 1000, sharedRun: io.task === 'both', limitSeconds, exitCode: code, timedOut, signal, tail });
    });
  });
}

/**
 * Why a run failed, in one line (null when it exited 0): the timeout, the signal, or the exit status and the
 * last line it printed; a shared run's reason says so (it fails both tasks).
 */
export function runFailure(run: RunOutcome): string | null {
  if (run.exitCode === 0 && !run.timedOut) return null;
  const shared = run.sharedRun ? ' (the one run of both tasks)' : '';
  if (run.timedOut) return `timed out after ${run.limitSeconds} s and was killed${shared}`;
  const last = run.tail.split(/\r?\n/).map((l) => l.trim()).filter(Boolean).pop() ?? 'no output';
  const said = last.length > 300 ? `${last.slice(0, 300)}…` : last;
  if (run.exitCode === null) return `killed by ${run.signal ?? 'a signal'}${shared}; last output: ${said}`;
  return `exit ${run.exitCode}${shared}: ${said}`;
}
