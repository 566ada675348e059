import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startServerProcess, stopProcess } from './processes.js';

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
  }
}

/** Starts the emulators the integration tests share: s3rver on a random loopback port, in its own process. */
export default async function setup(project: TestProject) {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'lsync-s3rver-'));
  const { child, info } = await startServerProcess(process.execPath, [
    '--openssl-legacy-provider',
    path.resolve('test/support/s3rver-process.cjs'),
    directory,
  ]);
  project.provide('s3Endpoint', `http://127.0.0.1:${info.port}`);
  return async () => {
    await stopProcess(child);
    await rm(directory, { recursive: true, force: true });
  };
}
