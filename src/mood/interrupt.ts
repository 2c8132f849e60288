/**
 * Stopping a long run on SIGINT (Ctrl-C), SIGTERM (`docker stop`, `kill`) or SIGHUP (closed terminal):
 * the cleanup runs synchronously, then the signal is raised again with its default action, so the
 * process ends the way its parent expects (a shell reports 130 / 143) within moments of the signal —
 * as soon as the main thread is free (network methods compute in worker threads, which die with it).
 */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type StopSignal = (typeof SIGNALS)[number];
const SIGNAL_NUMBERS: Readonly<Record<StopSignal, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
/** If the raised signal does not end the process (it was ignored when we started), exit this long after it. */
const FALLBACK_EXIT_MS = 500;

/**
 * Runs `body`; a stop signal meanwhile calls `cleanup` (synchronous: the process ends right after)
 * and `onSignal` with the signal's name first. The handlers are removed when `body` settles.
 */
export async function interruptible<T>(body: () => Promise<T>, cleanup: () => void, onSignal: (signal: StopSignal) => void): Promise<T> {
  const handlers = new Map<StopSignal, () => void>();
  const detach = (): void => {
    for (const [signal, handler] of handlers) process.removeListener(signal, handler);
  };
  for (const signal of SIGNALS) {
    const handler = (): void => {
      // Our handlers stay installed until the cleanup is done, so a second signal cannot cut it short.
      try {
        onSignal(signal);
        cleanup();
      } finally {
        detach();
        process.kill(process.pid, signal);
        setTimeout(() => process.exit(128 + SIGNAL_NUMBERS[signal]), FALLBACK_EXIT_MS);
      }
    };
    handlers.set(signal, handler);
    process.on(signal, handler);
  }
  try {
    return await body();
  } finally {
    detach();
  }
}
