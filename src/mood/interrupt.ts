/**
 * Stopping a long run on SIGINT (Ctrl-C), SIGTERM (`docker stop`, `kill`) or SIGHUP (closed terminal):
 * the cleanup runs synchronously, then the signal is raised again with its default action, so the
 * process ends the way its parent expects (a shell reports 130 / 143) within moments of the signal —
 * as soon as the main thread is free (network methods compute in worker threads, which die with it).
 */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type StopSignal = (typeof SIGNALS)[number];

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
      detach();
      try {
        onSignal(signal);
        cleanup();
      } finally {
        process.kill(process.pid, signal);
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
