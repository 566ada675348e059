import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export async function waitForHttp(url: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

export interface TimedRun {
  readonly code: number;
  readonly seconds: number;
  readonly maxRssKiB: number;
  /** User plus system CPU time of the child (and its waited-for children). */
  readonly cpuSeconds: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Run a command under `/usr/bin/time -v`: wall time and peak RSS of the child. `env` is merged over this process's
 * environment; a variable set to `undefined` is removed for the child.
 */
export function timed(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<TimedRun> {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-v', command, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      const user = /User time \(seconds\): ([\d.]+)/.exec(stderr);
      const system = /System time \(seconds\): ([\d.]+)/.exec(stderr);
      resolve({
        code: code ?? -1,
        seconds,
        maxRssKiB: rss ? Number(rss[1]) : Number.NaN,
        cpuSeconds: user && system ? Number(user[1]) + Number(system[1]) : Number.NaN,
        stdout,
        stderr,
      });
    });
  });
}

/** `timed`, but a non-zero exit is an error (a benchmark must never report the time of a failed run). */
export async function timedOk(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<TimedRun> {
  const run = await timed(command, args, env);
  if (run.code !== 0) {
    const tail = run.stderr.split('\n').slice(-25).join('\n');
    throw new Error(`${command} ${args.join(' ')} exited with ${run.code}:\n${run.stdout.slice(-2000)}\n${tail}`);
  }
  return run;
}

export function stop(child: ChildProcess): void {
  if (child.exitCode === null) child.kill('SIGTERM');
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export const MiB = 1024 * 1024;

/** Peak RSS from `/usr/bin/time` (KiB) in MiB. */
export function rssMiB(run: TimedRun): number {
  return run.maxRssKiB / 1024;
}

/** Flush dirty pages so that one measurement does not pay for the previous one's writes. */
export async function flushDisks(): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('sync', [], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('close', () => resolve());
  });
}

/** Rotate `items` left by `by` (so that each repetition runs the same steps in a different order). */
export function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = items.length === 0 ? 0 : by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

/** Log progress to stderr (stdout carries the final table). */
export function progress(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Run `work` over `items` with at most `concurrency` in flight. */
export async function forEachConcurrently<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** CPU time (user plus system) a running process has used so far, from /proc (Linux; clock ticks of 10 ms). */
export function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}
