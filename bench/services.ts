/** The emulators a benchmark talks to, each in its own process so that its CPU and memory are not the subject's. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SIMULATOR_DEFAULT_CREDENTIALS } from '../functions/simulator/server.js';
import { createDynamoDbClient } from '../test/support/dynamodb.js';
import { startServerProcess, stopProcess } from '../test/support/processes.js';
import { freePort, waitForHttp } from './support.js';

export const REPO = path.resolve(import.meta.dirname, '..');
export const CLI = path.join(REPO, 'dist/localytics-sync.mjs');

/** Credentials for the simulator (its documented defaults). */
export const API_ENV = {
  LOCALYTICS_API_KEY: SIMULATOR_DEFAULT_CREDENTIALS.apiKey,
  LOCALYTICS_API_SECRET: SIMULATOR_DEFAULT_CREDENTIALS.apiSecret,
} as const;

export interface S3rver {
  readonly endpoint: string;
  readonly pid: number | undefined;
  readonly client: S3Client;
  /** Environment that points the CLI (standard AWS SDK variables) at this s3rver. */
  readonly env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** s3rver (disk-backed S3 emulator) on a free port, storing under `dir`, with the given buckets. */
export async function startS3rver(dir: string, buckets: readonly string[]): Promise<S3rver> {
  await mkdir(dir, { recursive: true });
  const { child, info } = await startServerProcess(process.execPath, [
    '--openssl-legacy-provider',
    path.join(REPO, 'test/support/s3rver-process.cjs'),
    dir,
  ]);
  const endpoint = `http://127.0.0.1:${info.port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  for (const bucket of buckets) await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    endpoint,
    pid: child.pid,
    client,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      // s3rver stores the SDK's aws-chunked framing (its default for a streamed PUT with a checksum) as data.
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      NODE_NO_WARNINGS: '1',
    },
    async stop() {
      client.destroy();
      await stopProcess(child);
    },
  };
}

export interface Fauxqs {
  readonly endpoint: string;
  readonly client: SQSClient;
  stop(): Promise<void>;
}

/** fauxqs (in-memory SQS emulator) on a free port. */
export async function startFauxqs(): Promise<Fauxqs> {
  const { child, info } = await startServerProcess(process.execPath, [
    path.join(REPO, 'test/support/fauxqs-process.mjs'),
  ]);
  const endpoint = `http://127.0.0.1:${info.port}`;
  const client = new SQSClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    useQueueUrlAsEndpoint: false,
  });
  return {
    endpoint,
    client,
    async stop() {
      client.destroy();
      await stopProcess(child);
    },
  };
}

export interface SimulatorProcess {
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * The built CLI's `simulate` command. `tmpDir` becomes its TMPDIR, so its large-file cache lives (and is deleted)
 * with the benchmark's own temporary files.
 */
export async function startSimulator(options: {
  readonly ratePerMinute: number;
  readonly tmpDir: string;
  readonly largeHours?: readonly string[];
}): Promise<SimulatorProcess> {
  await mkdir(options.tmpDir, { recursive: true });
  const port = await freePort();
  const args = [CLI, 'simulate', '--port', String(port), '--rate', String(options.ratePerMinute)];
  for (const large of options.largeHours ?? []) args.push('--large-hour', large);
  const child = spawn(process.execPath, args, { stdio: 'ignore', env: { ...process.env, TMPDIR: options.tmpDir } });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/_admin/faults`);
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  return { url, child, stop: () => stopProcess(child) };
}

/** One request record of the simulator (`GET /_admin/requests`). */
export interface SimulatorRequest {
  /** Arrival time, epoch ms. */
  readonly at: number;
  readonly kind: 'api' | 'file' | 'admin';
  readonly status: number;
  readonly path: string;
}

export async function simulatorRequests(url: string): Promise<SimulatorRequest[]> {
  const response = await fetch(`${url}/_admin/requests`);
  if (!response.ok) throw new Error(`GET /_admin/requests answered ${response.status}`);
  return (await response.json()) as SimulatorRequest[];
}

/** Ask the API for a log hour like the CLI does (Basic auth, redirect not followed) and return the file URL. */
export async function resolveLogHourUrl(apiUrl: string, appUuid: string, hour: number): Promise<string> {
  const iso = new Date(hour).toISOString();
  const parts = [iso.slice(0, 4), iso.slice(5, 7), iso.slice(8, 10), iso.slice(11, 13)];
  const auth = Buffer.from(`${API_ENV.LOCALYTICS_API_KEY}:${API_ENV.LOCALYTICS_API_SECRET}`).toString('base64');
  const response = await fetch(`${apiUrl}/v1/exports/analytics/logs/${appUuid}/${parts.join('/')}`, {
    headers: { authorization: `Basic ${auth}` },
    redirect: 'manual',
  });
  await response.body?.cancel();
  const location = response.headers.get('location');
  if (response.status !== 302 || !location) throw new Error(`expected a 302 with a Location, got ${response.status}`);
  return new URL(location, apiUrl).toString();
}

export interface Dynalite {
  readonly endpoint: string;
  readonly client: DynamoDBClient;
  stop(): Promise<void>;
}

/** dynalite (DynamoDB on LevelDB) on a free port, storing under `dir`. Tables: `createTestTable` (test support). */
export async function startDynalite(dir: string): Promise<Dynalite> {
  await mkdir(dir, { recursive: true });
  const { child, info } = await startServerProcess(process.execPath, [
    path.join(REPO, 'test/support/dynalite-process.cjs'),
    dir,
  ]);
  const endpoint = `http://127.0.0.1:${info.port}`;
  const client = createDynamoDbClient(endpoint);
  return {
    endpoint,
    client,
    async stop() {
      client.destroy();
      await stopProcess(child);
    },
  };
}
