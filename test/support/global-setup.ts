import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startServerProcess, stopProcess } from './processes.js';

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
    sqsEndpoint: string;
  }
}

/**
 * Starts the emulators the integration tests share, each in its own process on a random loopback port: s3rver
 * (S3, disk-backed) and fauxqs (SQS).
 */
export default async function setup(project: TestProject) {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'lsync-s3rver-'));
  const [s3rver, fauxqs] = await Promise.all([
    startServerProcess(process.execPath, [
      '--openssl-legacy-provider',
      path.resolve('test/support/s3rver-process.cjs'),
      directory,
    ]),
    startServerProcess(process.execPath, [path.resolve('test/support/fauxqs-process.mjs')]),
  ]);
  project.provide('s3Endpoint', `http://127.0.0.1:${s3rver.info.port}`);
  project.provide('sqsEndpoint', `http://127.0.0.1:${fauxqs.info.port}`);
  return async () => {
    await Promise.all([stopProcess(s3rver.child), stopProcess(fauxqs.child)]);
    await rm(directory, { recursive: true, force: true });
  };
}
