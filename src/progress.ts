// A progress bar with rate and ETA on stderr. On a terminal it redraws one line; otherwise
// (CI, pipes) it prints a plain line at most every few seconds so logs stay readable.
import type { Writable } from 'node:stream';
import { fmtSecs } from './format.js';

export class Progress {
  private start = Date.now();
  private lastDraw = 0;
  private readonly tty: boolean;
  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly out: Writable = process.stderr,
    private readonly unit = 'items',
  ) {
    this.tty = (out as NodeJS.WriteStream).isTTY === true;
  }

  update(done: number, extra = ''): void {
    const now = Date.now();
    if (now - this.lastDraw < (this.tty ? 100 : 5000) && done < this.total) return;
    this.lastDraw = now;
    const secs = (now - this.start) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const eta = rate > 0 ? (this.total - done) / rate : Infinity;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const width = 24;
    const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
    const line = `${this.label} ${bar} ${done.toLocaleString('en-US')}/${this.total.toLocaleString('en-US')} ${this.unit} ${(frac * 100).toFixed(0)}%  ${rate.toFixed(rate < 10 ? 1 : 0)}/s  ETA ${fmtSecs(eta)}${extra ? `  ${extra}` : ''}`;
    this.out.write(this.tty ? `\r\x1b[2K${line}` : `${line}\n`);
  }

  finish(): void {
    if (this.tty) this.out.write('\n');
  }
}

/**
 * Progress of a long command with phases (backup, restore): one bar per phase, drawn only for
 * phases big enough to be worth watching.
 */
export function phaseProgress(stderr: NodeJS.WritableStream, label: string) {
  let current: { phase: string; bar: Progress } | undefined;
  const progress = (phase: string, done: number, total: number) => {
    if (total < 20_000) return;
    if (current?.phase !== phase) {
      current?.bar.finish();
      current = {
        phase,
        bar: new Progress(`${label}: ${phase}`, total, stderr as never, phase === 'rows' ? 'rows' : 'events'),
      };
    }
    current.bar.update(done);
  };
  return { progress, finish: () => current?.bar.finish() };
}
