/**
 * What the demo prints: one line per step with the time since the start, a progress bar for
 * the rounds on a terminal (cli-progress) and a plain line per round otherwise, the closing
 * summary, and — on failure — one line naming what failed plus the tail of the failing child's log.
 */
import cliProgress from 'cli-progress';

export class DemoOutput {
  private readonly started = Date.now();
  private bars: cliProgress.MultiBar | null = null;
  private bar: cliProgress.SingleBar | null = null;

  constructor(
    private readonly tty: boolean,
    private readonly out: NodeJS.WritableStream = process.stdout,
  ) {}

  elapsedSeconds(): number {
    return (Date.now() - this.started) / 1000;
  }

  /** A progress line. */
  step(text: string): void {
    const line = `[${this.elapsedSeconds().toFixed(1).padStart(5)}s] ${text}\n`;
    if (this.bars) this.bars.log(line);
    else this.out.write(line);
  }

  /** Plain text (the summary). */
  text(lines: string[]): void {
    this.stopRounds();
    this.out.write(`${lines.join('\n')}\n`);
  }

  startRounds(total: number): void {
    if (!this.tty) return;
    this.bars = new cliProgress.MultiBar({ format: '        rounds [{bar}] {value}/{total}  {status}', hideCursor: true, clearOnComplete: true, stream: this.out as NodeJS.WriteStream }, cliProgress.Presets.shades_classic);
    this.bar = this.bars.create(total, 0, { status: 'round 1 running' });
  }

  updateRounds(done: number, status: string): void {
    this.bar?.update(done, { status });
  }

  stopRounds(): void {
    if (!this.bars) return;
    this.bars.stop();
    this.bars = null;
    this.bar = null;
  }

  /** The failure: one line on stderr, then the tail of the failing child's log (indented). */
  failure(line: string, tail: string, logFile: string | null): void {
    this.stopRounds();
    let text = `fedmed demo: error: ${line}\n`;
    if (tail.trim()) text += `${tail.trimEnd().split('\n').map((l) => `  | ${l}`).join('\n')}\n`;
    if (logFile) text += `  (full log: ${logFile})\n`;
    process.stderr.write(text);
  }
}
