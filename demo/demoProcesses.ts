/**
 * The demo's child processes: every coordinator, edge and one-shot CLI step runs as a real
 * `fedmed` process (the same binary a real admin or hospital runs), its output kept in a log file
 * and the last lines in memory. Long-running children that exit before the demo stops them are
 * a failure. `stopAll` ends every child that is still alive (SIGTERM, then SIGKILL after a grace
 * period), and an exit hook kills any left over, so the demo never leaves orphans behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/cli/fedmed.js beside this file's dist/demo/. */
export const FEDMED_CLI = fileURLToPath(new URL('../cli/fedmed.js', import.meta.url));

/** A failure of one named step, with the tail of the log of the child that failed (if any). */
export class DemoFailure extends Error {
  constructor(
    message: string,
    readonly tail: string = '',
    readonly logFile: string | null = null,
  ) {
    super(message);
  }
}

export interface DemoChild {
  name: string;
  pid: number;
  logFile: string;
  child: ChildProcess;
  /** Everything the child wrote so far (stdout and stderr, up to the last 1 MB). */
  output(): string;
  /** Its last `lines` lines. */
  tail(lines?: number): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
}

const KEEP_BYTES = 1 << 20;

export class DemoProcesses {
  private readonly children: DemoChild[] = [];
  private stopping = false;
  private unexpected: (failure: DemoFailure) => void = () => {};
  private readonly exitHook = (): void => {
    for (const c of this.children) if (c.alive()) c.child.kill('SIGKILL');
  };

  constructor(private readonly logDir: string) {
    process.on('exit', this.exitHook);
  }

  /** Called once when a long-running child exits before `stopAll`. */
  onUnexpectedExit(handler: (failure: DemoFailure) => void): void {
    this.unexpected = handler;
  }

  /** Every process the demo started (pid and name), alive or not. */
  pids(): { name: string; pid: number }[] {
    return this.children.map((c) => ({ name: c.name, pid: c.pid }));
  }

  /**
   * Starts `fedmed ARGS` as its own process group (so a terminal's Ctrl-C reaches only the demo,
   * which then stops the children in order). `longRunning`: its exit before `stopAll` is a failure.
   */
  spawn(name: string, args: string[], o: { longRunning?: boolean; env?: NodeJS.ProcessEnv } = {}): DemoChild {
    const logFile = join(this.logDir, `${name}.log`);
    writeFileSync(logFile, `$ fedmed ${args.join(' ')}\n`);
    const child = spawn(process.execPath, [FEDMED_CLI, ...args], { env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    const take = (d: Buffer): void => {
      const s = d.toString();
      out = (out + s).slice(-KEEP_BYTES);
      appendFileSync(logFile, s);
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    let done = false;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('error', (err) => {
        take(Buffer.from(`\n${err.message}\n`));
        done = true;
        resolve({ code: null, signal: null });
      });
      child.on('close', (code, signal) => {
        done = true;
        resolve({ code, signal });
      });
    });
    const entry: DemoChild = {
      name,
      pid: child.pid ?? -1,
      logFile,
      child,
      output: () => out,
      tail: (lines = 15) => tailLines(out, lines),
      exited,
      alive: () => !done && child.exitCode === null && child.signalCode === null,
    };
    this.children.push(entry);
    if (o.longRunning) {
      void exited.then(({ code, signal }) => {
        if (!this.stopping) this.unexpected(new DemoFailure(`${name} (pid ${entry.pid}) exited unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`})`, entry.tail(), logFile));
      });
    }
    return entry;
  }

  /** Runs a one-shot `fedmed` step to its end; a non-zero exit is a failure naming `what`. */
  async run(name: string, what: string, args: string[], timeoutMs = 120_000): Promise<string> {
    const c = this.spawn(name, args);
    const timer = setTimeout(() => c.child.kill('SIGKILL'), timeoutMs);
    const { code, signal } = await c.exited;
    clearTimeout(timer);
    if (code !== 0) throw new DemoFailure(`${what} failed (fedmed ${args[0]} ${args[1] ?? ''}: ${signal ? `killed by ${signal}` : `exit code ${code}`})`, c.tail(), c.logFile);
    // stdout only would be nicer, but the steps used print their result as the last JSON line.
    return c.output();
  }

  /** Stops every child still running: SIGTERM, and SIGKILL for any still alive after `graceMs`. */
  async stopAll(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    const alive = this.children.filter((c) => c.alive());
    for (const c of alive) c.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const c of alive) if (c.alive()) c.child.kill('SIGKILL');
    }, graceMs);
    await Promise.all(alive.map((c) => c.exited));
    clearTimeout(timer);
    process.off('exit', this.exitHook);
  }
}

export function tailLines(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** The last line of `output` that parses as a JSON object. */
export function lastJsonLine<T>(output: string): T {
  const lines = output.trim().split('\n').reverse();
  for (const l of lines) {
    if (!l.startsWith('{')) continue;
    try {
      return JSON.parse(l) as T;
    } catch {
      // not this line
    }
  }
  throw new DemoFailure(`no JSON result in the output:\n${tailLines(output, 5)}`);
}
