import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { findLeaks, type Leak } from './leak-scan.js';
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
  const capture = await mkdtemp(path.join(os.tmpdir(), 'lsync-output-'));
  process.env.LSYNC_OUTPUT_CAPTURE = capture;
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
    // Every byte the suite printed (workers' stdout/stderr, console calls) is scanned for leaked secrets.
    const leaks: Leak[] = [];
    let scanned = 0;
    for (const file of await readdir(capture)) {
      const text = await readFile(path.join(capture, file), 'utf8');
      scanned += text.length;
      leaks.push(...findLeaks(text, file));
    }
    await rm(capture, { recursive: true, force: true });
    if (leaks.length > 0) {
      // Vitest reports a teardown error but keeps its exit code: fail the run explicitly.
      process.exitCode = 1;
      throw new Error(
        `secrets leaked into test output: ${leaks.map((leak) => `${leak.what} in ${leak.where}`).join('; ')}`,
      );
    }
    process.stdout.write(`output scan: ${scanned} characters of test output, no secret or signature found\n`);
  };
}
