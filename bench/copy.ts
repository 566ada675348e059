/**
 * Group 1: copy throughput and peak memory of the real `sync` CLI for big log hours (a presigned-style URL on a
 * loopback HTTP server: the simulator's large hours), into a local directory and into s3rver, against limits and a
 * peer measured in the same repetition.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { DeleteObjectCommand, HeadObjectCommand, paginateListObjectsV2 } from '@aws-sdk/client-s3';
import { SINGLE_PUT_MAX_BYTES } from '../functions/adapters/s3-sink.js';
import { floorHour, formatHour, HOUR_MS } from '../functions/core/hours.js';
import { DEMO_APPS } from '../functions/simulator/dataset.js';
import type { ChildName } from './children.js';
import { fixed, type GroupResult, infoRow, newGroup, ratio, table, targetRow } from './report.js';
import {
  API_ENV,
  CLI,
  resolveLogHourUrl,
  type S3rver,
  type SimulatorProcess,
  startS3rver,
  startSimulator,
} from './services.js';
import {
  flushDisks,
  MiB,
  median,
  processCpuSeconds,
  progress,
  rotate,
  rssMiB,
  type TimedRun,
  timedOk,
} from './support.js';

const BUCKET = 'bench';
/** Megabytes (10^6 bytes), as the memory targets are written. */
const MB = 1e6;

const METHODS = [
  'download',
  'upload',
  'localWrite',
  'syncLocal',
  'syncS3',
  'rclone',
  'nodeDownload',
  'copierDiscard',
] as const;
type Method = (typeof METHODS)[number];

const LABELS: Record<Method, string> = {
  download: 'limit: `curl` URL → /dev/null',
  upload: 'limit: local file → s3rver by the S3 sink’s transport for that size',
  localWrite: 'limit: local file → directory + fsync',
  syncLocal: '`sync` → local directory',
  syncS3: '`sync` → s3rver',
  rclone: 'peer: `rclone copyurl` → s3rver',
  nodeDownload: 'breakdown: Node `http.get` → discard',
  copierDiscard: 'breakdown: the copier’s `copyJob` → discarding sink',
};

interface Sample {
  readonly seconds: number;
  readonly rssMiB: number;
  /** CPU time of the measured process. */
  readonly cpuSeconds: number;
  /** CPU time the simulator and s3rver spent meanwhile (they share the 2 cores with the measured process). */
  readonly serverCpuSeconds: number;
}

type Repetition = Record<Method, Sample>;

interface BigFile {
  readonly sizeMiB: number;
  readonly hour: number;
  /** The presigned-style URL the API answered. */
  readonly url: string;
  /** The same bytes, downloaded once, for the upload and local-write limits. */
  readonly source: string;
  readonly bytes: number;
}

export interface CopyBenchOptions {
  readonly sizesMiB: readonly number[];
  readonly runs: number;
  readonly tmpRoot: string;
  readonly children: Record<ChildName, string>;
}

export async function benchCopy(options: CopyBenchOptions): Promise<GroupResult> {
  const group = newGroup('1. Copy');
  const app = DEMO_APPS[0];
  const firstHour = floorHour(Date.now()) - 3 * HOUR_MS;
  const hours = options.sizesMiB.map((_, index) => firstHour - index * HOUR_MS);
  const s3 = await startS3rver(path.join(options.tmpRoot, 'copy-s3rver'), [BUCKET]);
  let simulator: SimulatorProcess | undefined;
  try {
    simulator = await startSimulator({
      ratePerMinute: 6000,
      tmpDir: path.join(options.tmpRoot, 'copy-simulator'),
      largeHours: options.sizesMiB.map((size, index) => `${app}/${formatHour(hours[index] as number)}=${size}MiB`),
    });
    const files: BigFile[] = [];
    for (const [index, sizeMiB] of options.sizesMiB.entries()) {
      const hour = hours[index] as number;
      const url = await resolveLogHourUrl(simulator.url, app, hour);
      const source = path.join(options.tmpRoot, `copy-source-${sizeMiB}.gz`);
      progress(`copy: warming up the ${sizeMiB} MiB file (the simulator generates and caches it)`);
      await timedOk('curl', ['-sS', '-o', source, url]);
      files.push({ sizeMiB, hour, url, source, bytes: (await stat(source)).size });
    }
    const context: MethodContext = { ...options, s3, apiUrl: simulator.url, app };
    const serverCpu = () => processCpuSeconds(simulator?.child.pid) + processCpuSeconds(s3.pid);
    // What every `sync` run pays before copying a byte: Node start-up and loading the CLI bundle.
    const startups: TimedRun[] = [];
    for (let rep = 0; rep < options.runs; rep++) startups.push(await timedOk(process.execPath, [CLI, '--help']));
    // The fixed cost of one run, whatever the file size: a small (a few kB) log hour, by sync and by rclone.
    const small = await smallFile(context, firstHour + HOUR_MS);
    const fixedCosts: { sync: TimedRun; rclone: TimedRun }[] = [];
    for (let rep = 0; rep < options.runs; rep++) {
      progress(`copy: run ${rep + 1}/${options.runs}, a small log hour (fixed cost)`);
      fixedCosts.push({
        sync: await runMethod('syncS3', small, rep, context),
        rclone: await runMethod('rclone', small, rep, context),
      });
    }
    const samples: Repetition[][] = files.map(() => []);
    for (let rep = 0; rep < options.runs; rep++) {
      for (const [index, file] of files.entries()) {
        const repetition: Partial<Repetition> = {};
        for (const method of rotate(METHODS, rep + index)) {
          progress(`copy: run ${rep + 1}/${options.runs}, ${file.sizeMiB} MiB, ${method}`);
          await flushDisks();
          const before = serverCpu();
          const run = await runMethod(method, file, rep, context);
          repetition[method] = {
            seconds: run.seconds,
            rssMiB: rssMiB(run),
            cpuSeconds: run.cpuSeconds,
            serverCpuSeconds: serverCpu() - before,
          };
        }
        (samples[index] as Repetition[]).push(repetition as Repetition);
      }
    }
    summarise(group, files, samples);
    group.rows.push(
      infoRow(
        'CLI start-up alone (`node dist/localytics-sync.mjs --help`): wall / peak RSS',
        `${fixed(median(startups.map((run) => run.seconds)), 2)} s / ${fixed(median(startups.map(rssMiB)))} MiB`,
      ),
      infoRow(
        `fixed cost of one run: a ${small.bytes.toLocaleString('en-US')}-byte log hour → s3rver, \`sync\` / rclone copyurl: wall / peak RSS`,
        `${fixed(median(fixedCosts.map((run) => run.sync.seconds)), 2)} s / ${fixed(median(fixedCosts.map((run) => rssMiB(run.sync))))} MiB; ` +
          `${fixed(median(fixedCosts.map((run) => run.rclone.seconds)), 2)} s / ${fixed(median(fixedCosts.map((run) => rssMiB(run.rclone))))} MiB`,
      ),
    );
  } finally {
    await simulator?.stop();
    await s3.stop();
  }
  return group;
}

/** A normal (small) log hour of the simulator, downloaded once like the big ones. */
async function smallFile(context: MethodContext, hour: number): Promise<BigFile> {
  const url = await resolveLogHourUrl(context.apiUrl, context.app, hour);
  const source = path.join(context.tmpRoot, 'copy-source-small.gz');
  await timedOk('curl', ['-sS', '-o', source, url]);
  return { sizeMiB: 0, hour, url, source, bytes: (await stat(source)).size };
}

interface MethodContext extends CopyBenchOptions {
  readonly s3: S3rver;
  readonly apiUrl: string;
  readonly app: string;
}

/** Run one method once, check that it copied every byte, clean up what it wrote. */
async function runMethod(method: Method, file: BigFile, rep: number, context: MethodContext): Promise<TimedRun> {
  const { s3, children } = context;
  const node = process.execPath;
  switch (method) {
    case 'download': {
      const run = await timedOk('curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download}', file.url]);
      expectBytes(method, Number(run.stdout), file.bytes);
      return run;
    }
    case 'upload': {
      const key = `limit-upload/${file.sizeMiB}-${rep}.gz`;
      const run = await timedOk(node, [
        children['upload-file'],
        uploadMode(file),
        file.source,
        s3.endpoint,
        BUCKET,
        key,
      ]);
      await checkAndDeleteObject(s3, key, file.bytes, method);
      return run;
    }
    case 'localWrite': {
      const dir = await mkdtemp(path.join(context.tmpRoot, 'copy-write-'));
      try {
        const run = await timedOk(node, [children['write-file'], file.source, path.join(dir, 'file.gz')]);
        expectBytes(method, (JSON.parse(run.stdout) as { bytes: number }).bytes, file.bytes);
        return run;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    case 'syncLocal': {
      const dir = await mkdtemp(path.join(context.tmpRoot, 'copy-sync-'));
      try {
        const run = await timedOk(node, syncArgs(dir, file, context), API_ENV);
        checkSyncSummary(run, file.bytes);
        return run;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    case 'syncS3': {
      const prefix = `sync/${file.sizeMiB}-${rep}`;
      const run = await timedOk(node, syncArgs(`s3://${BUCKET}/${prefix}`, file, context), {
        ...API_ENV,
        ...s3.env,
      });
      checkSyncSummary(run, file.bytes);
      await deletePrefix(s3, `${prefix}/`);
      return run;
    }
    case 'nodeDownload':
    case 'copierDiscard': {
      const args =
        method === 'nodeDownload' ? ['plain', file.url] : ['copier', context.apiUrl, context.app, String(file.hour)];
      const run = await timedOk(node, [children.download, ...args]);
      expectBytes(method, (JSON.parse(run.stdout) as { bytes: number }).bytes, file.bytes);
      return run;
    }
    case 'rclone': {
      const key = `rclone/${file.sizeMiB}-${rep}.gz`;
      const run = await timedOk(
        'rclone',
        ['copyurl', '--s3-chunk-size', '8M', '--s3-upload-concurrency', '4', file.url, `bench:${BUCKET}/${key}`],
        rcloneEnv(s3.endpoint),
      );
      await checkAndDeleteObject(s3, key, file.bytes, method);
      return run;
    }
  }
}

/** The transport `sync` uses for this file (a gzip log hour: its length is known): the upload limit measures it. */
function uploadMode(file: BigFile): 'put' | 'multipart' {
  return file.bytes <= SINGLE_PUT_MAX_BYTES ? 'put' : 'multipart';
}

function syncArgs(dest: string, file: BigFile, context: MethodContext): string[] {
  return [
    CLI,
    'sync',
    '--dest',
    dest,
    '--api-url',
    context.apiUrl,
    '--datasets',
    'logs',
    '--apps',
    context.app,
    '--from',
    formatHour(file.hour),
    '--to',
    formatHour(file.hour + HOUR_MS),
    '--rate',
    '6000',
    '--json',
  ];
}

/** rclone's S3 remote `bench:` from environment variables only (no config file). */
function rcloneEnv(endpoint: string): NodeJS.ProcessEnv {
  return {
    RCLONE_CONFIG_BENCH_TYPE: 's3',
    RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
    RCLONE_CONFIG_BENCH_ENDPOINT: endpoint,
    RCLONE_CONFIG_BENCH_REGION: 'us-east-1',
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: 'S3RVER',
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: 'S3RVER',
    RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
    // The AWS Go SDK in rclone refuses a custom CA bundle on its plain-HTTP transport; s3rver is plain HTTP.
    AWS_CA_BUNDLE: undefined,
  };
}

function expectBytes(what: string, got: number, expected: number): void {
  if (got !== expected) throw new Error(`${what} moved ${got} bytes, expected ${expected}`);
}

function checkSyncSummary(run: TimedRun, bytes: number): void {
  const summary = JSON.parse(run.stdout) as { copied: number; bytes: number; failed: unknown[] };
  if (summary.copied !== 1 || summary.failed.length > 0) {
    throw new Error(`sync did not copy the file: ${run.stdout}`);
  }
  expectBytes('sync', summary.bytes, bytes);
}

async function checkAndDeleteObject(s3: S3rver, key: string, bytes: number, what: string): Promise<void> {
  const head = await s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
  expectBytes(what, head.ContentLength ?? -1, bytes);
  await s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
}

async function deletePrefix(s3: S3rver, prefix: string): Promise<void> {
  for await (const page of paginateListObjectsV2({ client: s3.client }, { Bucket: BUCKET, Prefix: prefix })) {
    for (const object of page.Contents ?? []) {
      await s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: object.Key }));
    }
  }
}

function summarise(group: GroupResult, files: readonly BigFile[], samples: readonly Repetition[][]): void {
  const seconds = (reps: readonly Repetition[], method: Method) => median(reps.map((rep) => rep[method].seconds));
  const rss = (reps: readonly Repetition[], method: Method) => median(reps.map((rep) => rep[method].rssMiB));
  for (const [index, file] of files.entries()) {
    const reps = samples[index] as Repetition[];
    const mib = file.bytes / MiB;
    const speed = (method: Method) => mib / seconds(reps, method);
    const label = `${file.sizeMiB} MiB`;

    // Throughput ratios are taken per repetition (same minute, same machine state), then their median.
    const localLimit = (rep: Repetition) => Math.max(rep.download.seconds, rep.localWrite.seconds);
    const s3Limit = (rep: Repetition) => Math.max(rep.download.seconds, rep.upload.seconds);
    const localRatio = median(reps.map((rep) => localLimit(rep) / rep.syncLocal.seconds));
    const s3Ratio = median(reps.map((rep) => s3Limit(rep) / rep.syncS3.seconds));
    const rcloneRatio = median(reps.map((rep) => rep.rclone.seconds / rep.syncS3.seconds));
    const slower = (a: Method, b: Method) => (seconds(reps, a) >= seconds(reps, b) ? a : b);
    const localSlower = slower('download', 'localWrite');
    const s3Slower = slower('download', 'upload');
    group.rows.push(
      targetRow(
        `${label} → local dir: throughput ÷ slower limit`,
        `${fixed(speed('syncLocal'))} vs ${fixed(speed(localSlower))} MiB/s (${localSlower}) = ${ratio(localRatio)}`,
        localRatio,
        '>=',
        0.9,
        '≥ 0.90×',
      ),
      targetRow(
        `${label} → s3rver: throughput ÷ slower limit`,
        `${fixed(speed('syncS3'))} vs ${fixed(speed(s3Slower))} MiB/s (${s3Slower}) = ${ratio(s3Ratio)}`,
        s3Ratio,
        '>=',
        0.9,
        '≥ 0.90×',
      ),
      targetRow(
        `${label} → s3rver: speed vs rclone copyurl`,
        `${fixed(speed('syncS3'))} vs ${fixed(speed('rclone'))} MiB/s = ${ratio(rcloneRatio)}`,
        rcloneRatio,
        '>=',
        1,
        '≥ 1.00×',
      ),
    );
    group.rows.push(
      infoRow(
        `${label} breakdown: Node download → discard / copyJob → discarding sink / sync → local dir`,
        `${fixed(speed('nodeDownload'))} / ${fixed(speed('copierDiscard'))} / ${fixed(speed('syncLocal'))} MiB/s`,
      ),
    );
    const local = rss(reps, 'syncLocal');
    const s3 = rss(reps, 'syncS3');
    group.rows.push(
      targetRow(
        `${label} → local dir: peak RSS`,
        `${fixed((local * MiB) / MB)} MB (${fixed(local)} MiB)`,
        (local * MiB) / MB,
        '<',
        200,
        '< 200 MB',
      ),
      targetRow(`${label} → s3rver: peak RSS`, `${fixed(s3)} MiB`, s3, '<=', 128, '≤ 128 MiB'),
    );
    const cpu = (method: Method, pick: (sample: Sample) => number) =>
      fixed(median(reps.map((rep) => pick(rep[method]))), 2);
    group.details.push(
      `**${label}** (${file.bytes.toLocaleString('en-US')} bytes, ${reps.length} runs each)\n\n${table(
        [
          'Method',
          'Wall s (median)',
          'MiB/s',
          'Peak RSS MiB',
          'CPU s, the process',
          'CPU s, simulator + s3rver meanwhile',
          'Wall s (every run)',
        ],
        METHODS.map((method) => [
          LABELS[method],
          fixed(seconds(reps, method), 2),
          fixed(speed(method)),
          fixed(rss(reps, method)),
          cpu(method, (sample) => sample.cpuSeconds),
          cpu(method, (sample) => sample.serverCpuSeconds),
          reps.map((rep) => fixed(rep[method].seconds, 2)).join(', '),
        ]),
      )}`,
    );
  }
  if (files.length >= 2) {
    const small = samples[0] as Repetition[];
    const large = samples[samples.length - 1] as Repetition[];
    const smallLabel = `${files[0]?.sizeMiB} MiB`;
    const largeLabel = `${files[files.length - 1]?.sizeMiB} MiB`;
    for (const method of ['syncLocal', 'syncS3'] as const) {
      const growth = median(
        large.map((rep, index) => rep[method].rssMiB / (small[index] as Repetition)[method].rssMiB),
      );
      group.rows.push(
        targetRow(
          `peak RSS ${largeLabel} ÷ ${smallLabel}, ${method === 'syncLocal' ? '→ local dir' : '→ s3rver'}`,
          `${fixed(rss(large, method))} ÷ ${fixed(rss(small, method))} MiB = ${ratio(growth)}`,
          growth,
          '<=',
          1.2,
          '≤ 1.20× (+20%)',
        ),
      );
    }
    group.rows.push(
      infoRow(
        `peak RSS rclone copyurl, ${smallLabel} / ${largeLabel}`,
        `${fixed(rss(small, 'rclone'))} / ${fixed(rss(large, 'rclone'))} MiB`,
      ),
    );
  }
  group.notes.push(
    'Throughput = file bytes ÷ wall time of the whole process (start-up, the API request, the copy), for `sync`, the limits and rclone alike.',
    'Every ratio is the median of per-repetition ratios; a repetition runs every method back to back, in an order rotated from one repetition to the next, with `sync(1)` before each so one run does not pay for the previous run’s writes.',
    `Slower limit: for a local directory the slower of downloading to /dev/null and writing the same bytes into a directory with fsync (the local sink fsyncs too); for s3rver the slower of downloading to /dev/null and uploading the same bytes from a local file by the transport the S3 sink uses for a gzip log hour of that size: one streaming \`PutObject\` with its \`Content-Length\` up to ${(SINGLE_PUT_MAX_BYTES / 1024 ** 3).toFixed(0)} GiB (every size here), a multipart upload of 8 MiB parts, 4 in flight, above (measured with lib-storage's \`Upload\`, the same shape).`,
    'rclone runs with `--s3-chunk-size 8M --s3-upload-concurrency 4` (the part size and parallelism of the S3 sink’s multipart uploads); below its default 200 MiB `upload_cutoff` it sends one PUT, above it a multipart upload.',
    'Every process that talks to s3rver (`sync`, the upload limit) runs with `AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED`: s3rver stores the SDK’s default aws-chunked framing (a trailing CRC32) as data. On AWS the SDK default stays on.',
    'Peak RSS and the process’s CPU time come from `/usr/bin/time -v`; MB = 10^6 bytes. The simulator’s and s3rver’s CPU time during each run is read from /proc.',
    'The breakdown rows isolate the parts of a copy: Node’s HTTP client alone, then the copier’s own `copyJob` with its default verification (bundled from the working tree) into a sink that discards the bytes, so that the rest of `sync → local dir` is start-up and the destination.',
    'The simulator, s3rver and the copying process all run on the same 2 cores, so CPU contention is part of every figure (for the limits too).',
    'Where the time and memory of a copy go (CPU and memory profiles), and why the rows still missed cannot go lower on this machine: [copy-profile.md](copy-profile.md).',
  );
}
