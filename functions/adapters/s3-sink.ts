import { randomBytes, randomUUID } from 'node:crypto';
import { PassThrough, Readable, Transform } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type MultipartUpload,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { abortScope, withAbortScope } from '../core/abort-scope.js';
import { ConfigError, ObjectExistsError, SinkError } from '../core/errors.js';
import type { ObjectSink, SinkCallOptions, StoredObject, VersionedText, WriteOptions } from '../core/ports.js';
import { describeError } from '../core/redact.js';
import { untilAborted } from '../core/request-budget.js';

export interface S3Destination {
  readonly bucket: string;
  /** Without leading or trailing slash; may be empty. */
  readonly prefix: string;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Parse `s3://bucket/prefix`. */
export function parseS3Url(url: string): S3Destination {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!match) throw new ConfigError(`--dest ${url} is not an s3://bucket/prefix URL`);
  const bucket = match[1] as string;
  if (!BUCKET_NAME.test(bucket)) throw new ConfigError(`--dest bucket name "${bucket}" is not a valid S3 bucket name`);
  const prefix = (match[2] as string).replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((segment) => segment === '..' || segment === '.')) {
    throw new ConfigError(`--dest prefix "${prefix}" may not contain "." or ".." segments`);
  }
  return { bucket, prefix };
}

export interface S3SinkOptions {
  /** Multipart part size, bytes. Default 8 MiB. */
  readonly partSize?: number;
  /** Parts uploaded at once. Default 4. */
  readonly queueSize?: number;
  /** A write whose length is known and at most this is one streaming `PutObject`. Default `SINGLE_PUT_MAX_BYTES`. */
  readonly singlePutMaxBytes?: number;
  /**
   * Find out, before the first streamed write, whether the store keeps what the SDK sends (`prepare()`): an
   * S3-compatible store may keep the SDK's aws-chunked framing (a streamed body with a trailing checksum) as data.
   * Amazon S3's own endpoints decode it and verify the checksum: no probe is needed there. Default false.
   */
  readonly probeStore?: boolean;
  /**
   * The same store's client with checksums only where an operation requires them, so that a streamed write is a
   * plain body of its `Content-Length`: used when the probe finds the store keeps aws-chunked framing as data.
   * Without it such a store is refused, naming the SDK setting that makes it usable.
   */
  readonly plainBodyClient?: S3Client;
  /** Time allowed for one call that moves no data (listing, metadata, a state record), retries included. Default 20 s. */
  readonly callTimeoutMs?: number;
  /**
   * `abortAbandonedUploads` aborts an open upload of a missing key once it is this old (no live writer takes that
   * long). Default 24 hours, as the created bucket's lifecycle rule.
   */
  readonly abandonedUploadAgeMs?: number;
}

/**
 * Bodies of a known length up to this size are sent as one streaming `PutObject` (bench/RESULTS.md, group 1: faster
 * than a multipart upload at every size measured, and memory stays flat). S3 accepts single PUTs of up to 5 GiB.
 */
export const SINGLE_PUT_MAX_BYTES = 5 * 1024 ** 3;

/** Where the probe of an S3-compatible store writes (and removes) its small objects. */
export const STORE_PROBE_PREFIX = '_state/store-probe/';
const PROBE_BYTES = 4096;
const STALE_PROBE_MS = 60 * 60_000;

/**
 * An `ObjectSink` over an S3 bucket and prefix. A write of known length is one streaming `PutObject` (S3 stores it
 * only once all `Content-Length` bytes arrived, so an interrupted one leaves nothing); any other write is a multipart
 * upload, aborted on failure. Data writes only create (`If-None-Match: *`) unless told to replace. Every call takes
 * the caller's signal and, when it moves no data, a time limit.
 */
export class S3Sink implements ObjectSink {
  readonly location: string;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly singlePutMaxBytes: number;
  private readonly callTimeoutMs: number;
  private readonly abandonedUploadAgeMs: number;
  /** The client streamed writes use, once the store is known (see `prepare`). */
  private streamClient?: Promise<S3Client>;

  constructor(
    private readonly client: S3Client,
    private readonly destination: S3Destination,
    private readonly options: S3SinkOptions = {},
  ) {
    this.location = `s3://${destination.bucket}/${destination.prefix}`;
    this.partSize = options.partSize ?? 8 * 1024 * 1024;
    this.queueSize = options.queueSize ?? 4;
    this.singlePutMaxBytes = options.singlePutMaxBytes ?? SINGLE_PUT_MAX_BYTES;
    this.callTimeoutMs = options.callTimeoutMs ?? 20_000;
    this.abandonedUploadAgeMs = options.abandonedUploadAgeMs ?? 24 * 60 * 60_000;
  }

  async prepare(options: SinkCallOptions = {}): Promise<void> {
    await this.clientForStreams(options.signal);
  }

  /**
   * Listing instead of HeadObject: with `s3:ListBucket` granted only under the key prefix (least privilege), S3
   * answers a HEAD of a missing key with 403 instead of 404; a prefix listing is allowed and says the same thing.
   */
  async exists(key: string, options: SinkCallOptions = {}): Promise<boolean> {
    const fullKey = this.fullKey(key);
    try {
      const response = await this.call(options.signal, (abortSignal) =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.destination.bucket, Prefix: fullKey, MaxKeys: 1 }), {
          abortSignal,
        }),
      );
      return response.Contents?.[0]?.Key === fullKey;
    } catch (error) {
      throw this.fail('checking', key, error);
    }
  }

  async *list(
    prefix: string,
    options: { startAfter?: string; signal?: AbortSignal } = {},
  ): AsyncIterable<StoredObject> {
    const base = this.fullKey('');
    let token: string | undefined;
    try {
      do {
        const page = await this.call(options.signal, (abortSignal) =>
          this.client.send(
            new ListObjectsV2Command({
              Bucket: this.destination.bucket,
              Prefix: this.fullKey(prefix),
              StartAfter: options.startAfter ? this.fullKey(options.startAfter) : undefined,
              ContinuationToken: token,
            }),
            { abortSignal },
          ),
        );
        for (const object of page.Contents ?? []) {
          if (!object.Key) continue;
          yield { key: object.Key.slice(base.length), size: object.Size ?? 0, lastModified: object.LastModified };
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (error) {
      throw this.fail('listing', prefix, error);
    }
  }

  async write(key: string, body: Readable, options: WriteOptions): Promise<{ bytes: number }> {
    const length = options.contentLength;
    const fullKey = this.fullKey(key);
    let written: { bytes: number };
    try {
      written =
        length !== undefined && length <= this.singlePutMaxBytes
          ? await this.putStream(fullKey, body, length, options)
          : await this.putInParts(key, body, options);
    } catch (error) {
      body.destroy();
      if (!(error instanceof ObjectExistsError)) throw this.fail('writing', key, error);
      await this.abortUploadsOf(fullKey, options.signal);
      throw error;
    }
    // The key exists now and is written once: an upload of it still open (a killed writer's, or a duplicate's that
    // lost) can never complete. Abort them so that nothing is billed forever.
    await this.abortUploadsOf(fullKey, options.signal);
    return written;
  }

  /**
   * One `PutObject` streaming `body` with `Content-Length: length`. A body that fails, or ends short or long, aborts
   * the request before its last byte is sent, so S3 never completes the object. (The verifier upstream holds its last
   * chunk back until the download passed every check, for the same reason.)
   */
  private async putStream(
    fullKey: string,
    body: Readable,
    length: number,
    options: WriteOptions,
  ): Promise<{ bytes: number }> {
    const client = await this.clientForStreams(options.signal);
    const request = abortScope(options.signal);
    let bytes = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        callback(bytes > length ? new SinkError(`body is longer than its announced ${length} bytes`) : null, chunk);
      },
      flush(callback) {
        callback(bytes === length ? null : new SinkError(`body ended after ${bytes} of its announced ${length} bytes`));
      },
    });
    // The HTTP request never learns that its body failed (pipe() does not forward errors): abort it, or it would
    // wait for the missing bytes.
    // The SDK wraps the body in its aws-chunked stream (default checksums), which re-emits a body error on a stream
    // nobody listens to (an uncaught exception): give it a body that is only ever ended or destroyed without error.
    const toSdk = new PassThrough();
    counted.on('error', (error) => {
      request.abort(error);
      toSdk.destroy();
    });
    body.once('error', (error) => counted.destroy(error));
    body.pipe(counted).pipe(toSdk);
    try {
      await client.send(
        new PutObjectCommand({
          Bucket: this.destination.bucket,
          Key: fullKey,
          Body: toSdk,
          ContentLength: length,
          ContentType: options.contentType,
          Metadata: options.metadata,
          IfNoneMatch: options.replace ? undefined : '*',
        }),
        { abortSignal: request.signal },
      );
      return { bytes };
    } catch (error) {
      counted.destroy();
      if (httpStatus(error) === 412) throw this.exists412(fullKey, error);
      // The body's own error (or the caller's reason) says more than the SDK's "request aborted".
      throw request.signal.aborted ? (request.signal.reason ?? error) : error;
    } finally {
      request.dispose();
    }
  }

  /**
   * A body of unknown length, in parts of `partSize` (`queueSize` in flight; the body is read no faster): one
   * `PutObject` when it fits in one part, else a multipart upload completed only after its last part, and aborted on
   * any failure before this returns. Not `@aws-sdk/lib-storage`: it sends its requests without an abort signal (a
   * part in flight outlives the write that gave up on it, and so does the upload).
   */
  private async putInParts(key: string, body: Readable, options: WriteOptions): Promise<{ bytes: number }> {
    const fullKey = this.fullKey(key);
    const scope = abortScope(options.signal);
    // A body that waits for data must not hold a write that was given up.
    scope.signal.addEventListener('abort', () => body.destroy(), { once: true });
    const condition = options.replace ? {} : { IfNoneMatch: '*' };
    const target = { Bucket: this.destination.bucket, Key: fullKey };
    let uploadId: string | undefined;
    let failure: unknown;
    let bytes = 0;
    const parts: CompletedPart[] = [];
    const inFlight = new Set<Promise<void>>();
    const sendPart = (data: Buffer, partNumber: number) => {
      const sent: Promise<void> = this.client
        .send(new UploadPartCommand({ ...target, UploadId: uploadId, PartNumber: partNumber, Body: data }), {
          abortSignal: scope.signal,
        })
        .then(
          (part) => {
            parts.push({ PartNumber: partNumber, ETag: part.ETag, ChecksumCRC32: part.ChecksumCRC32 });
          },
          (error: unknown) => {
            failure ??= error;
            scope.abort(error);
          },
        )
        .finally(() => inFlight.delete(sent));
      inFlight.add(sent);
    };
    const settle = async () => {
      while (inFlight.size > 0) await Promise.race(inFlight);
    };
    try {
      let pending: Buffer | undefined;
      let partNumber = 0;
      for await (const data of partsOf(body, this.partSize)) {
        if (pending) {
          uploadId ??= await this.createUpload(target, options, scope.signal);
          while (inFlight.size >= this.queueSize) await Promise.race(inFlight);
          if (failure) throw failure;
          sendPart(pending, ++partNumber);
        }
        pending = data;
        bytes += data.length;
      }
      if (uploadId === undefined) {
        await this.client.send(
          new PutObjectCommand({
            ...target,
            Body: pending ?? Buffer.alloc(0),
            ContentType: options.contentType,
            Metadata: options.metadata,
            ...condition,
          }),
          { abortSignal: scope.signal },
        );
        return { bytes };
      }
      sendPart(pending as Buffer, ++partNumber);
      await settle();
      if (failure) throw failure;
      parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      await this.client.send(
        new CompleteMultipartUploadCommand({
          ...target,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
          ...condition,
        }),
        { abortSignal: scope.signal },
      );
      uploadId = undefined;
      return { bytes };
    } catch (error) {
      scope.abort(error);
      await settle();
      if (uploadId !== undefined) await this.abortUpload(fullKey, uploadId);
      const cause = failure ?? error;
      if (httpStatus(cause) === 412) throw this.exists412(fullKey, cause);
      // The upload was aborted under us: by a concurrent writer of the key that landed it first (see write()).
      if (isNoSuchUpload(cause) && !options.replace && (await this.exists(key).catch(() => false))) {
        throw this.exists412(fullKey, cause);
      }
      throw options.signal?.aborted && !failure ? (options.signal.reason ?? cause) : cause;
    } finally {
      scope.dispose();
    }
  }

  private async createUpload(
    target: { Bucket: string; Key: string },
    options: WriteOptions,
    signal: AbortSignal,
  ): Promise<string> {
    // As the SDK's own uploader: with default checksums each part carries a CRC32, declared when the upload starts.
    const checksums = (await this.client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
    const created = await this.call(signal, (abortSignal) =>
      this.client.send(
        new CreateMultipartUploadCommand({
          ...target,
          ContentType: options.contentType,
          Metadata: options.metadata,
          ChecksumAlgorithm: checksums ? 'CRC32' : undefined,
        }),
        { abortSignal },
      ),
    );
    if (!created.UploadId) throw new SinkError('the store answered no upload id');
    return created.UploadId;
  }

  /** Abort an upload of ours that failed: with a time limit of its own, since the caller's signal may be why. */
  private async abortUpload(fullKey: string, uploadId: string): Promise<void> {
    await this.call(undefined, (abortSignal) =>
      this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.destination.bucket, Key: fullKey, UploadId: uploadId }),
        { abortSignal },
      ),
    ).catch(() => undefined);
  }

  /** Best effort: every open upload of `fullKey` (which exists now) is aborted. */
  private async abortUploadsOf(fullKey: string, signal: AbortSignal | undefined): Promise<void> {
    try {
      for (const upload of await this.openUploads(fullKey, signal)) {
        if (upload.Key === fullKey && upload.UploadId) await this.abortUpload(fullKey, upload.UploadId);
      }
    } catch {
      // Not supported by this store, or not allowed: the next sweep (or a bucket lifecycle rule) cleans up.
    }
  }

  /**
   * Abort the multipart uploads that writers killed mid-write left open under `prefix`: those of a key that exists
   * (written once: they can never complete) and those older than `abandonedUploadAgeMs` (no live writer is). An
   * upload is billed until then, and a key whose job never comes back (a regenerated export) is never written
   * again. Resolves how many it aborted.
   */
  async abortAbandonedUploads(prefix: string, options: SinkCallOptions = {}): Promise<number> {
    let aborted = 0;
    const abandonedBefore = Date.now() - this.abandonedUploadAgeMs;
    for (const upload of await this.openUploads(this.fullKey(prefix), options.signal)) {
      if (!upload.Key || !upload.UploadId) continue;
      const relative = upload.Key.slice(this.fullKey('').length);
      const old = upload.Initiated !== undefined && upload.Initiated.getTime() < abandonedBefore;
      if (old || (await this.exists(relative, options))) {
        await this.call(options.signal, (abortSignal) =>
          this.client.send(
            new AbortMultipartUploadCommand({
              Bucket: this.destination.bucket,
              Key: upload.Key,
              UploadId: upload.UploadId,
            }),
            { abortSignal },
          ),
        );
        aborted++;
      }
    }
    return aborted;
  }

  private async openUploads(fullPrefix: string, signal?: AbortSignal): Promise<MultipartUpload[]> {
    const uploads: MultipartUpload[] = [];
    let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
    for (;;) {
      const page = await this.call(signal, (abortSignal) =>
        this.client.send(
          new ListMultipartUploadsCommand({ Bucket: this.destination.bucket, Prefix: fullPrefix, ...markers }),
          { abortSignal },
        ),
      );
      uploads.push(...(page.Uploads ?? []));
      if (!page.IsTruncated) return uploads;
      markers = { KeyMarker: page.NextKeyMarker, UploadIdMarker: page.NextUploadIdMarker };
    }
  }

  async readText(key: string, options: SinkCallOptions = {}): Promise<string | undefined> {
    return (await this.readStoredText(key, options.signal))?.text;
  }

  async readVersioned(key: string, options: SinkCallOptions = {}): Promise<VersionedText | undefined> {
    const stored = await this.readStoredText(key, options.signal);
    if (stored && !stored.version) throw this.fail('reading', key, new Error('the store answered no ETag'));
    return stored as VersionedText | undefined;
  }

  private async readStoredText(
    key: string,
    signal: AbortSignal | undefined,
  ): Promise<{ text: string; version?: string } | undefined> {
    try {
      return await this.call(signal, async (abortSignal) => {
        const response = await this.getObject(key, abortSignal);
        if (!response) return undefined;
        return { text: (await response.Body?.transformToString('utf8')) ?? '', version: response.ETag };
      });
    } catch (error) {
      throw this.fail('reading', key, error);
    }
  }

  private getObject(key: string, abortSignal: AbortSignal): Promise<GetObjectCommandOutput | undefined> {
    return getStoredObject(this.client, this.destination, key, abortSignal);
  }

  async writeText(key: string, text: string, options: SinkCallOptions = {}): Promise<void> {
    try {
      await this.putText(key, text, {}, options.signal);
    } catch (error) {
      throw this.fail('writing', key, error);
    }
  }

  async createText(key: string, text: string, options: SinkCallOptions = {}): Promise<string | undefined> {
    try {
      return await this.putText(key, text, { IfNoneMatch: '*' }, options.signal);
    } catch (error) {
      // 412: the key exists; 409: a concurrent conditional write to the same key is in progress.
      if (isConditionFailure(error)) return undefined;
      throw this.fail('creating', key, error);
    }
  }

  async replaceText(
    key: string,
    text: string,
    version: string,
    options: SinkCallOptions = {},
  ): Promise<string | undefined> {
    try {
      return await this.putText(key, text, { IfMatch: version }, options.signal);
    } catch (error) {
      // 412: another version is there now; 409: a concurrent conditional write; 404: the key is gone.
      if (isConditionFailure(error) || httpStatus(error) === 404) return undefined;
      throw this.fail('replacing', key, error);
    }
  }

  private async putText(
    key: string,
    text: string,
    conditions: { IfNoneMatch?: string; IfMatch?: string },
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const response = await this.call(signal, (abortSignal) =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.destination.bucket,
          Key: this.fullKey(key),
          Body: text,
          ContentType: 'application/json',
          ...conditions,
        }),
        { abortSignal },
      ),
    );
    return response.ETag ?? '';
  }

  async delete(key: string, options: SinkCallOptions = {}): Promise<void> {
    try {
      await this.call(options.signal, (abortSignal) =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.destination.bucket, Key: this.fullKey(key) }), {
          abortSignal,
        }),
      );
    } catch (error) {
      throw this.fail('deleting', key, error);
    }
  }

  /**
   * `DeleteObject` with `If-Match`: Amazon S3 deletes only while the current version has that ETag (412 otherwise,
   * 404 when the key is gone, 409 when a concurrent write or delete won). It needs `s3:GetObject` besides
   * `s3:DeleteObject` on the key.
   */
  async deleteIfUnchanged(key: string, version: string, options: SinkCallOptions = {}): Promise<boolean> {
    try {
      await this.call(options.signal, (abortSignal) =>
        this.client.send(
          new DeleteObjectCommand({ Bucket: this.destination.bucket, Key: this.fullKey(key), IfMatch: version }),
          { abortSignal },
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error) || httpStatus(error) === 404) return false;
      throw this.fail('deleting', key, error);
    }
  }

  /** A call that moves no data: the caller's signal, and `callTimeoutMs` over all of its attempts. */
  private call<T>(signal: AbortSignal | undefined, send: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    return withAbortScope(signal, this.callTimeoutMs, send);
  }

  /**
   * The client for streamed writes: this sink's own, unless the probe (run once, when asked for) finds the store
   * keeps the SDK's aws-chunked framing as data.
   */
  private async clientForStreams(signal?: AbortSignal): Promise<S3Client> {
    if (!this.options.probeStore) return this.client;
    this.streamClient ??= this.probe().catch((error: unknown) => {
      this.streamClient = undefined;
      throw error;
    });
    const client = await untilAborted(this.streamClient, signal);
    if (!client) throw new SinkError('stopped before the store was probed', { cause: signal?.reason });
    return client;
  }

  /**
   * Write a few random bytes under `_state/store-probe/` as a data write streams them, read them back, and remove
   * them: the first client whose bytes come back unchanged is the one for streamed writes. Until then no data object
   * is written, so a store that keeps the framing as data never gets a wrong object at a final key.
   */
  private async probe(): Promise<S3Client> {
    await this.removeStaleProbes();
    const sample = randomBytes(PROBE_BYTES);
    const candidates = [
      { client: this.client, how: 'as configured' },
      ...(this.options.plainBodyClient ? [{ client: this.options.plainBodyClient, how: 'as a plain body' }] : []),
    ];
    const kept: string[] = [];
    for (const { client, how } of candidates) {
      const key = `${STORE_PROBE_PREFIX}${randomUUID()}`;
      try {
        await this.call(undefined, (abortSignal) =>
          client.send(
            new PutObjectCommand({
              Bucket: this.destination.bucket,
              Key: this.fullKey(key),
              Body: Readable.from([sample]),
              ContentLength: sample.length,
              ContentType: 'application/octet-stream',
            }),
            { abortSignal },
          ),
        );
        const stored = await this.call(undefined, async (abortSignal) => {
          const response = await this.getObject(key, abortSignal);
          return Buffer.from((await response?.Body?.transformToByteArray()) ?? []);
        });
        if (stored.equals(sample)) return client;
        kept.push(`${how}: it kept ${stored.length} bytes of ${sample.length}`);
      } catch (error) {
        throw new ConfigError(`${this.location} cannot be written: ${describeError(error)}`, { cause: error });
      } finally {
        await this.delete(key).catch(() => undefined);
      }
    }
    if (!this.options.plainBodyClient) {
      throw new ConfigError(
        `${this.location} keeps the SDK's aws-chunked framing of a streamed upload as data (${kept.join('; ')}): ` +
          'set AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED for it',
      );
    }
    throw new ConfigError(`${this.location} does not keep the bytes a PutObject sends (${kept.join('; ')})`);
  }

  /** Probe objects of a process that was killed while probing. */
  private async removeStaleProbes(): Promise<void> {
    const staleBefore = Date.now() - STALE_PROBE_MS;
    for await (const object of this.list(STORE_PROBE_PREFIX)) {
      if (object.lastModified && object.lastModified.getTime() < staleBefore) {
        await this.delete(object.key).catch(() => undefined);
      }
    }
  }

  private exists412(fullKey: string, cause: unknown): ObjectExistsError {
    return new ObjectExistsError(`${fullKey} in s3://${this.destination.bucket} exists already`, { cause });
  }

  private fullKey(key: string): string {
    return this.destination.prefix ? `${this.destination.prefix}/${key}` : key;
  }

  private fail(action: string, key: string, error: unknown): SinkError {
    return new SinkError(`${action} ${key} in ${this.location} failed: ${describeError(error)}`, { cause: error });
  }
}

/**
 * GET an object, or undefined when there is none. Without an unconditioned `s3:ListBucket` (our roles may list only
 * under the key prefix) S3 answers 403 rather than 404 for a missing key: a 403 is told apart by a prefix listing.
 */
export async function getStoredObject(
  client: S3Client,
  destination: S3Destination,
  key: string,
  abortSignal?: AbortSignal,
): Promise<GetObjectCommandOutput | undefined> {
  const fullKey = destination.prefix ? `${destination.prefix}/${key}` : key;
  try {
    return await client.send(new GetObjectCommand({ Bucket: destination.bucket, Key: fullKey }), { abortSignal });
  } catch (error) {
    const status = httpStatus(error);
    if (status === 404) return undefined;
    if (status !== 403) throw error;
    const listed = await withAbortScope(abortSignal, LISTING_TIMEOUT_MS, (signal) =>
      client.send(new ListObjectsV2Command({ Bucket: destination.bucket, Prefix: fullKey, MaxKeys: 1 }), {
        abortSignal: signal,
      }),
    );
    if (listed.Contents?.[0]?.Key !== fullKey) return undefined;
    throw error;
  }
}

/** The listing that tells a missing key from a denied one. */
const LISTING_TIMEOUT_MS = 20_000;

/** `body` in buffers of `size` bytes (the last one shorter). */
async function* partsOf(body: Readable, size: number): AsyncGenerator<Buffer> {
  let chunks: Buffer[] = [];
  let filled = 0;
  for await (const chunk of body) {
    let data = chunk as Buffer;
    while (filled + data.length >= size) {
      const take = size - filled;
      chunks.push(data.subarray(0, take));
      yield Buffer.concat(chunks);
      chunks = [];
      filled = 0;
      data = data.subarray(take);
    }
    if (data.length > 0) {
      chunks.push(data);
      filled += data.length;
    }
  }
  if (filled > 0) yield Buffer.concat(chunks);
}

function isNoSuchUpload(error: unknown): boolean {
  const { name, Code } = error as { name?: string; Code?: string };
  return httpStatus(error) === 404 && (name === 'NoSuchUpload' || Code === 'NoSuchUpload');
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** S3's answers to a conditional request whose condition did not hold (or raced another conditional request). */
function isConditionFailure(error: unknown): boolean {
  const status = httpStatus(error);
  return status === 412 || status === 409;
}
