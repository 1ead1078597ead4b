/**
 * Progress display: a cli-progress bar (step, loss, lr, tokens/s, ETA) on a terminal; on a pipe, one
 * plain line per logging step instead, so logs stay readable.
 */
import cliProgress from 'cli-progress';

export interface ProgressFields {
  loss: number | undefined;
  lr: number;
  tokensPerSecond: number;
}

export class TrainProgress {
  private bar: cliProgress.SingleBar | undefined;

  constructor(
    total: number,
    start: number,
    private readonly enabled: boolean,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    if (enabled && stream.isTTY) {
      this.bar = new cliProgress.SingleBar(
        {
          format: 'train |{bar}| step {value}/{total} | loss {loss} | lr {lr} | {tps} tok/s | ETA {eta_formatted}',
          stream,
          hideCursor: true,
          etaBuffer: 20,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, start, { loss: '-', lr: '-', tps: '-' });
    }
  }

  update(step: number, f: ProgressFields): void {
    this.bar?.update(step, {
      loss: f.loss === undefined ? '-' : f.loss.toFixed(4),
      lr: f.lr.toExponential(2),
      tps: f.tokensPerSecond.toFixed(0),
    });
  }

  /** A log line (printed above the bar on a terminal, or alone on a pipe). */
  log(line: string): void {
    if (!this.enabled) return;
    if (this.bar) {
      this.stream.write('\r\x1b[2K');
      this.stream.write(`${line}\n`);
      this.bar.render?.();
    } else {
      this.stream.write(`${line}\n`);
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
