import { PassThrough, type Readable, Transform } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  paginateListObjectsV2,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ConfigError, SinkError } from '../core/errors.js';
import type { ObjectSink, StoredObject, VersionedText, WriteOptions } from '../core/ports.js';
import { describeError } from '../core/redact.js';

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
  /**
   * An open multipart upload of a key we are about to write is abandoned (its writer was killed) once it is this
   * old; a younger one may be another writer's live upload and is left alone. Default 1 hour: longer than any
   * Lambda invocation (15 minutes at most).
   */
  readonly abandonedUploadAgeMs?: number;
  /** A write whose length is known and at most this is one streaming `PutObject`. Default `SINGLE_PUT_MAX_BYTES`. */
  readonly singlePutMaxBytes?: number;
}

/**
 * Bodies of a known length up to this size are sent as one streaming `PutObject` (bench/RESULTS.md, group 1: faster
 * than a multipart upload at every size measured, and memory stays flat). S3 accepts single PUTs of up to 5 GiB.
 */
export const SINGLE_PUT_MAX_BYTES = 5 * 1024 ** 3;

/**
 * An `ObjectSink` over an S3 bucket and prefix. A write of known length is one streaming `PutObject` (S3 stores it
 * only once all `Content-Length` bytes arrived, so an interrupted one leaves nothing); any other write is a multipart
 * upload, aborted on failure.
 */
export class S3Sink implements ObjectSink {
  readonly location: string;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly abandonedUploadAgeMs: number;
  private readonly singlePutMaxBytes: number;

  constructor(
    private readonly client: S3Client,
    private readonly destination: S3Destination,
    options: S3SinkOptions = {},
  ) {
    this.location = `s3://${destination.bucket}/${destination.prefix}`;
    this.partSize = options.partSize ?? 8 * 1024 * 1024;
    this.queueSize = options.queueSize ?? 4;
    this.abandonedUploadAgeMs = options.abandonedUploadAgeMs ?? 60 * 60_000;
    this.singlePutMaxBytes = options.singlePutMaxBytes ?? SINGLE_PUT_MAX_BYTES;
  }

  /**
   * Listing instead of HeadObject: with `s3:ListBucket` granted only under the key prefix (least privilege), S3
   * answers a HEAD of a missing key with 403 instead of 404; a prefix listing is allowed and says the same thing.
   */
  async exists(key: string): Promise<boolean> {
    const fullKey = this.fullKey(key);
    try {
      const response = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.destination.bucket, Prefix: fullKey, MaxKeys: 1 }),
      );
      return response.Contents?.[0]?.Key === fullKey;
    } catch (error) {
      throw this.fail('checking', key, error);
    }
  }

  async *list(prefix: string, options: { startAfter?: string } = {}): AsyncIterable<StoredObject> {
    const base = this.fullKey('');
    const pages = paginateListObjectsV2(
      { client: this.client },
      {
        Bucket: this.destination.bucket,
        Prefix: this.fullKey(prefix),
        StartAfter: options.startAfter ? this.fullKey(options.startAfter) : undefined,
      },
    );
    try {
      for await (const page of pages) {
        for (const object of page.Contents ?? []) {
          if (!object.Key) continue;
          yield { key: object.Key.slice(base.length), size: object.Size ?? 0, lastModified: object.LastModified };
        }
      }
    } catch (error) {
      throw this.fail('listing', prefix, error);
    }
  }

  async write(key: string, body: Readable, options: WriteOptions): Promise<{ bytes: number }> {
    const length = options.contentLength;
    if (length !== undefined && length <= this.singlePutMaxBytes) return this.putStream(key, body, length, options);
    let bytes = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        callback(null, chunk);
      },
    });
    // A failing download reaches the upload through `counted`; the upload reports it (upload.done() rejects). The
    // listener keeps a late error, after the upload gave up reading, from becoming an unhandled 'error' event.
    counted.on('error', () => undefined);
    body.once('error', (error) => counted.destroy(error));
    await this.abortAbandonedUploads(this.fullKey(key));
    body.pipe(counted);
    const upload = new Upload({
      client: this.client,
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
      params: {
        Bucket: this.destination.bucket,
        Key: this.fullKey(key),
        Body: counted,
        ContentType: options.contentType,
        Metadata: options.metadata,
      },
    });
    try {
      await upload.done();
      return { bytes };
    } catch (error) {
      body.destroy();
      counted.destroy();
      // lib-storage aborts the multipart upload itself (leavePartsOnError: false); make sure of it.
      await upload.abort().catch(() => undefined);
      throw this.fail('writing', key, error);
    }
  }

  /**
   * One `PutObject` streaming `body` with `Content-Length: length`. A body that fails, or ends short or long, aborts
   * the request before its last byte is sent, so S3 never completes the object. (The verifier upstream holds its last
   * chunk back until the download passed every check, for the same reason.)
   */
  private async putStream(
    key: string,
    body: Readable,
    length: number,
    options: WriteOptions,
  ): Promise<{ bytes: number }> {
    const fullKey = this.fullKey(key);
    const request = new AbortController();
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
    // An upload a killed process left open for this key, from a multipart write (see below).
    await this.abortAbandonedUploads(fullKey);
    try {
      const response = await this.client.send(
        new PutObjectCommand({
          Bucket: this.destination.bucket,
          Key: fullKey,
          Body: toSdk,
          ContentLength: length,
          ContentType: options.contentType,
          Metadata: options.metadata,
        }),
        { abortSignal: request.signal },
      );
      if (
        !(response.ChecksumCRC32 || response.ChecksumCRC32C || response.ChecksumCRC64NVME || response.ChecksumSHA256)
      ) {
        await this.checkStoredLength(fullKey, length);
      }
      return { bytes };
    } catch (error) {
      body.destroy();
      counted.destroy();
      // The body's own error says more than the SDK's "request aborted".
      throw this.fail('writing', key, request.signal.aborted ? (request.signal.reason ?? error) : error);
    }
  }

  /**
   * A store that answered a streaming PUT without a checksum of its own did not verify one. Some S3-compatible stores
   * (s3rver) then store the SDK's aws-chunked framing as data: check the stored length, and remove a wrong object.
   */
  private async checkStoredLength(fullKey: string, length: number): Promise<void> {
    let head = await this.client.send(new HeadObjectCommand({ Bucket: this.destination.bucket, Key: fullKey }));
    // A concurrent writer of the same key (a duplicate job) may be storing the same bytes right now, and a store
    // without atomic PUTs shows its object half written: look again before calling the object wrong.
    for (let look = 1; look < 4 && head.ContentLength !== length; look++) {
      await new Promise((resolve) => setTimeout(resolve, 250 * look));
      head = await this.client.send(new HeadObjectCommand({ Bucket: this.destination.bucket, Key: fullKey }));
    }
    if (head.ContentLength === length) return;
    const removed = await this.client
      .send(new DeleteObjectCommand({ Bucket: this.destination.bucket, Key: fullKey }))
      .then(
        () => 'it was removed',
        (error: unknown) => `removing it failed (${describeError(error)}): delete it by hand, or it counts as copied`,
      );
    throw new SinkError(
      `the store kept ${head.ContentLength} bytes of a ${length}-byte PUT (it does not decode aws-chunked uploads; ` +
        `set AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED for it); ${removed}`,
    );
  }

  /**
   * A process killed mid-upload (a Lambda timeout, kill -9) cannot abort its multipart upload. The key is
   * deterministic, so before writing it again we abort the uploads still open for it that are older than any live
   * writer can be. A younger one is a concurrent writer of the same key (a duplicate job): both uploads complete
   * with the same bytes, the later one wins. Best effort: S3-compatible stores without ListMultipartUploads just
   * skip it, and the bucket's lifecycle rule remains the backstop.
   */
  async abortAbandonedUploads(fullKey: string): Promise<number> {
    let aborted = 0;
    try {
      const response = await this.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.destination.bucket, Prefix: fullKey }),
      );
      const abandonedBefore = Date.now() - this.abandonedUploadAgeMs;
      for (const upload of response.Uploads ?? []) {
        if (upload.Key !== fullKey || !upload.UploadId) continue;
        if (!upload.Initiated || upload.Initiated.getTime() > abandonedBefore) continue;
        await this.client.send(
          new AbortMultipartUploadCommand({ Bucket: this.destination.bucket, Key: fullKey, UploadId: upload.UploadId }),
        );
        aborted++;
      }
    } catch {
      // Not supported by this store, or not allowed: the lifecycle rule cleans up instead.
    }
    return aborted;
  }

  async readText(key: string): Promise<string | undefined> {
    // A GET of a missing key is a 403 without an unconditioned s3:ListBucket (see exists()).
    if (!(await this.exists(key))) return undefined;
    try {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: this.destination.bucket, Key: this.fullKey(key) }),
      );
      return await response.Body?.transformToString('utf8');
    } catch (error) {
      if (error instanceof NoSuchKey || (error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw this.fail('reading', key, error);
    }
  }

  async readVersioned(key: string): Promise<VersionedText | undefined> {
    if (!(await this.exists(key))) return undefined;
    try {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: this.destination.bucket, Key: this.fullKey(key) }),
      );
      const text = (await response.Body?.transformToString('utf8')) ?? '';
      if (!response.ETag) throw new Error('the store answered no ETag');
      return { text, version: response.ETag };
    } catch (error) {
      if (error instanceof NoSuchKey || (error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw this.fail('reading', key, error);
    }
  }

  async writeText(key: string, text: string): Promise<void> {
    try {
      await this.putText(key, text);
    } catch (error) {
      throw this.fail('writing', key, error);
    }
  }

  async createText(key: string, text: string): Promise<string | undefined> {
    try {
      return await this.putText(key, text, { IfNoneMatch: '*' });
    } catch (error) {
      // 412: the key exists; 409: a concurrent conditional write to the same key is in progress.
      if (isConditionFailure(error)) return undefined;
      throw this.fail('creating', key, error);
    }
  }

  async replaceText(key: string, text: string, version: string): Promise<string | undefined> {
    try {
      return await this.putText(key, text, { IfMatch: version });
    } catch (error) {
      // 412: another version is there now; 409: a concurrent conditional write; 404: the key is gone.
      if (isConditionFailure(error) || httpStatus(error) === 404) return undefined;
      throw this.fail('replacing', key, error);
    }
  }

  private async putText(
    key: string,
    text: string,
    conditions: { IfNoneMatch?: string; IfMatch?: string } = {},
  ): Promise<string> {
    const response = await this.client.send(
      new PutObjectCommand({
        Bucket: this.destination.bucket,
        Key: this.fullKey(key),
        Body: text,
        ContentType: 'application/json',
        ...conditions,
      }),
    );
    return response.ETag ?? '';
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.destination.bucket, Key: this.fullKey(key) }));
    } catch (error) {
      throw this.fail('deleting', key, error);
    }
  }

  private fullKey(key: string): string {
    return this.destination.prefix ? `${this.destination.prefix}/${key}` : key;
  }

  private fail(action: string, key: string, error: unknown): SinkError {
    return new SinkError(`${action} ${key} in ${this.location} failed: ${describeError(error)}`, { cause: error });
  }
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** S3's answers to a conditional write whose condition did not hold (or raced another conditional write). */
function isConditionFailure(error: unknown): boolean {
  const status = httpStatus(error);
  return status === 412 || status === 409;
}
