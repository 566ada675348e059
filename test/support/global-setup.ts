import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { startEmulators } from './emulators.js';
import { findLeaks, type Leak } from './leak-scan.js';

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
    sqsEndpoint: string;
    dynamoDbEndpoint: string;
    /** Where the stack is synthesized once, by the first test that needs the deployed assets. */
    deploymentDir: string;
  }
}

/**
 * Builds the CLI bundle, and starts the emulators the integration tests share, each in its own process on a random loopback port: s3rver
 * (S3, disk-backed), fauxqs (SQS) and dynalite (DynamoDB).
 */
export default async function setup(project: TestProject) {
  // The bundled CLI (dist/), which several tests spawn as a process, built once from the code under test: a bundle
  // left from an earlier build would test old code, and one rebuilt by a test while another spawns it could be
  // half-written.
  await promisify(execFile)(process.execPath, ['scripts/build-cli.mjs']);
  const capture = await mkdtemp(path.join(os.tmpdir(), 'lsync-output-'));
  process.env.LSYNC_OUTPUT_CAPTURE = capture;
  const emulators = await startEmulators();
  project.provide('s3Endpoint', emulators.s3Endpoint);
  project.provide('sqsEndpoint', emulators.sqsEndpoint);
  project.provide('dynamoDbEndpoint', emulators.dynamoDbEndpoint);
  const deploymentDir = await mkdtemp(path.join(os.tmpdir(), 'cdk.out-lsync-e2e-'));
  project.provide('deploymentDir', deploymentDir);
  return async () => {
    await emulators.stop();
    await rm(deploymentDir, { recursive: true, force: true });
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
