/**
 * Progress of a training epoch on stderr: a bar redrawn in place on a TTY; otherwise plain lines,
 * one per ~10 % of the epoch, so that a log file stays short and readable.
 */
export interface ProgressSink {
  write(text: string): void;
  isTTY: boolean;
}

export interface EpochProgress {
  /** Step `done` of `total` finished; `note` is shown after the bar (loss, s/step …). */
  update(done: number, total: number, note: string): void;
  /** A whole line (clears the bar first). */
  line(text: string): void;
}

const BAR_WIDTH = 24;

export function stderrSink(): ProgressSink {
  return { write: (text) => process.stderr.write(text), isTTY: process.stderr.isTTY === true };
}

export function createProgress(sink: ProgressSink, label: string): EpochProgress {
  let barShown = false;
  let lastTenth = -1;
  const clear = (): void => {
    if (barShown) sink.write('\r\x1b[K');
    barShown = false;
  };
  return {
    update(done, total, note) {
      if (sink.isTTY) {
        const filled = Math.round((BAR_WIDTH * done) / total);
        sink.write(`\r\x1b[K${label} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${done}/${total} ${note}`);
        barShown = true;
        return;
      }
      const tenth = Math.floor((10 * done) / total);
      if (tenth !== lastTenth && done < total) {
        lastTenth = tenth;
        sink.write(`${label} step ${done}/${total} ${note}\n`);
      }
    },
    line(text) {
      clear();
      lastTenth = -1;
      sink.write(`${text}\n`);
    },
  };
}
