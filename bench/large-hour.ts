/**
 * Copies one big log hour (default 1 GiB) through the real `sync` CLI into a local directory and into s3rver, and
 * prints the wall time and the CLI's peak RSS (from /usr/bin/time -v). Usage: npx tsx bench/large-hour.ts [sizeMiB]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { floorHour, formatHour, HOUR_MS } from '../functions/core/hours.js';
import { DEMO_APPS } from '../functions/simulator/dataset.js';
import { SIMULATOR_DEFAULT_CREDENTIALS } from '../functions/simulator/server.js';
import { startServerProcess, stopProcess } from '../test/support/processes.js';
import { freePort, stop, timed, waitForHttp } from './support.js';

const sizeMiB = Number(process.argv[2] ?? 1024);
const cli = path.resolve('dist/localytics-sync.mjs');
const app = DEMO_APPS[0];
const hour = floorHour(Date.now()) - 3 * HOUR_MS;
const port = await freePort();
const simulator = spawn(
  process.execPath,
  [
    cli,
    'simulate',
    '--port',
    String(port),
    '--rate',
    '6000',
    '--large-hour',
    `${app}/${formatHour(hour)}=${sizeMiB}MiB`,
  ],
  {
    stdio: 'ignore',
  },
);
const env = {
  LOCALYTICS_API_KEY: SIMULATOR_DEFAULT_CREDENTIALS.apiKey,
  LOCALYTICS_API_SECRET: SIMULATOR_DEFAULT_CREDENTIALS.apiSecret,
};
try {
  await waitForHttp(`http://127.0.0.1:${port}/_admin/faults`);
  const args = (dest: string) => [
    cli,
    'sync',
    '--dest',
    dest,
    '--api-url',
    `http://127.0.0.1:${port}`,
    '--datasets',
    'logs',
    '--apps',
    app,
    '--from',
    formatHour(hour),
    '--to',
    formatHour(hour + HOUR_MS),
    '--rate',
    '6000',
    '--json',
  ];
  const warm = await mkdtemp(path.join(os.tmpdir(), 'lsync-warm-'));
  await timed(process.execPath, args(warm), env); // makes the simulator build its cached file
  await rm(warm, { recursive: true, force: true });
  const report = (target: string, run: Awaited<ReturnType<typeof timed>>) => {
    const summary = JSON.parse(run.stdout) as { copied: number; bytes: number; rows: number };
    console.log(
      JSON.stringify({
        target,
        sizeMiB,
        exit: run.code,
        copied: summary.copied,
        bytes: summary.bytes,
        rows: summary.rows,
        seconds: Number(run.seconds.toFixed(2)),
        maxRssMiB: Number((run.maxRssKiB / 1024).toFixed(1)),
      }),
    );
  };
  const dest = await mkdtemp(path.join(os.tmpdir(), 'lsync-large-'));
  report('local', await timed(process.execPath, args(dest), env));
  await rm(dest, { recursive: true, force: true });

  const s3Dir = await mkdtemp(path.join(os.tmpdir(), 'lsync-s3rver-'));
  const s3rver = await startServerProcess(process.execPath, [
    '--openssl-legacy-provider',
    path.resolve('test/support/s3rver-process.cjs'),
    s3Dir,
  ]);
  try {
    const endpoint = `http://127.0.0.1:${s3rver.info.port}`;
    const s3Env = {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      NODE_NO_WARNINGS: '1',
    };
    const client = new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
    report('s3rver', await timed(process.execPath, args('s3://bench/lake'), { ...env, ...s3Env }));
  } finally {
    await stopProcess(s3rver.child);
    await rm(s3Dir, { recursive: true, force: true });
  }
} finally {
  stop(simulator);
}
