import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startServerProcess, stopProcess } from './processes.js';

/**
 * s3rver (S3, disk-backed), fauxqs (SQS) and dynalite (DynamoDB, LevelDB on disk), each in its own process on a
 * random loopback port.
 */
export async function startEmulators() {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'lsync-s3rver-'));
  const dynamoDirectory = await mkdtemp(path.join(os.tmpdir(), 'lsync-dynalite-'));
  const [s3rver, fauxqs, dynalite] = await Promise.all([
    // --openssl-legacy-provider: s3rver's ListObjectsV2 continuation tokens need it on Node 20.
    startServerProcess(process.execPath, [
      '--openssl-legacy-provider',
      path.resolve('test/support/s3rver-process.cjs'),
      directory,
    ]),
    startServerProcess(process.execPath, [path.resolve('test/support/fauxqs-process.mjs')]),
    startServerProcess(process.execPath, [path.resolve('test/support/dynalite-process.cjs'), dynamoDirectory]),
  ]);
  return {
    s3Endpoint: `http://127.0.0.1:${s3rver.info.port}`,
    sqsEndpoint: `http://127.0.0.1:${fauxqs.info.port}`,
    dynamoDbEndpoint: `http://127.0.0.1:${dynalite.info.port}`,
    async stop() {
      await Promise.all([stopProcess(s3rver.child), stopProcess(fauxqs.child), stopProcess(dynalite.child)]);
      await rm(directory, { recursive: true, force: true });
      await rm(dynamoDirectory, { recursive: true, force: true });
    },
  };
}
