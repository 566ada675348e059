import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Crc64NvmeJs } from '@aws-sdk/checksums/crc';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';

export type S3Operation =
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListMultipartUploads'
  | 'PutObject'
  | 'DeleteObject'
  | 'Other';

export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  readonly operation: S3Operation;
  /** The request's `Content-Encoding` (`aws-chunked` for the SDK's streamed bodies with a trailing checksum). */
  readonly contentEncoding?: string;
  status: number;
}

/**
 * A small proxy in front of s3rver that records every S3 request, tracks multipart uploads (so tests can prove none
 * is left open), answers AbortMultipartUpload the way S3 does (s3rver does not implement it), enforces S3's
 * conditional requests atomically per key, which s3rver ignores (`If-None-Match: *` and `If-Match: <etag>` on
 * PutObject and CompleteMultipartUpload, `If-Match` on DeleteObject), and injects failures. It also gives PutObject S3's atomicity: S3 stores an object only once its whole body
 * arrived, while s3rver writes the object file as the body streams (an interrupted PUT would leave a partial object
 * there). The proxy holds a PUT body until it is complete and forwards nothing of one that was cut short. And it
 * answers a PUT sent without a checksum as S3 does, with the CRC64NVME checksum S3 computes by default (s3rver
 * answers none, and a writer that gets none checks the stored object instead: a HEAD S3 never sees).
 */
export class S3RecordingProxy {
  readonly requests: ProxiedRequest[] = [];
  readonly created = new Set<string>();
  /** Bucket/key and start time of every multipart upload created, by upload id. */
  private readonly uploadKeys = new Map<string, { bucket: string; key: string; initiated: Date }>();
  readonly completed = new Set<string>();
  readonly aborted = new Set<string>();
  private readonly failures = new Map<S3Operation, number>();
  /** Conditional writes in progress, per path: they run one at a time, like S3's. */
  private readonly keyLocks = new Map<string, Promise<void>>();
  private readonly upstreamClient: S3Client;
  /**
   * Answer a GET or HEAD of a missing key with 403 AccessDenied, as S3 does for a caller without an unconditioned
   * `s3:ListBucket` on the bucket (our functions' roles: their listing is conditioned on the key prefix).
   */
  denyMissingKeys = false;
  /** Paths of the PutObject requests received and not answered yet. */
  private readonly pendingPuts = new Set<ProxiedRequest>();
  private readonly server: http.Server;
  private readonly target: URL;
  url = '';

  constructor(targetUrl: string) {
    this.target = new URL(targetUrl);
    this.upstreamClient = new S3Client({
      endpoint: targetUrl,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    this.server = http.createServer((request, response) => {
      this.handle(request, response).catch(() => response.destroy());
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** Make the next `count` requests of `operation` fail with 500 InternalError. */
  failNext(operation: S3Operation, count = 1): void {
    this.failures.set(operation, (this.failures.get(operation) ?? 0) + count);
  }

  clearFailures(): void {
    this.failures.clear();
  }

  /** Make an upload look as if it had been started `ms` ago (one a killed writer left long ago). */
  backdate(uploadId: string, ms: number): void {
    const upload = this.uploadKeys.get(uploadId);
    if (upload) upload.initiated = new Date(upload.initiated.getTime() - ms);
  }

  /** Multipart uploads created and neither completed nor aborted. */
  openUploads(): string[] {
    return [...this.created].filter((id) => !this.completed.has(id) && !this.aborted.has(id));
  }

  count(operation: S3Operation): number {
    return this.requests.filter((request) => request.operation === operation).length;
  }

  /** Paths (`/bucket/key`) of the PutObject requests under way: received, not answered yet. */
  putsInFlight(): string[] {
    return [...this.pendingPuts].map((request) => decodeURIComponent(request.path));
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://proxy');
    const operation = classify(request.method ?? 'GET', url);
    const record: ProxiedRequest = {
      method: request.method ?? 'GET',
      path: url.pathname,
      operation,
      contentEncoding: request.headers['content-encoding'],
      status: 0,
    };
    this.requests.push(record);
    const uploadId = url.searchParams.get('uploadId') ?? undefined;
    if (operation === 'PutObject') {
      this.pendingPuts.add(record);
      response.once('close', () => this.pendingPuts.delete(record));
    }

    const failures = this.failures.get(operation) ?? 0;
    if (failures > 0) {
      this.failures.set(operation, failures - 1);
      request.resume();
      await new Promise((resolve) => request.once('end', resolve));
      record.status = 500;
      response.writeHead(500, { 'content-type': 'application/xml' });
      response.end('<?xml version="1.0"?><Error><Code>InternalError</Code><Message>injected</Message></Error>');
      return;
    }
    if (
      (operation === 'UploadPart' || operation === 'CompleteMultipartUpload') &&
      uploadId &&
      this.aborted.has(uploadId)
    ) {
      // As S3 does: an aborted upload takes no more parts and cannot be completed.
      request.resume();
      await new Promise((resolve) => request.once('end', resolve));
      record.status = 404;
      response.writeHead(404, { 'content-type': 'application/xml' });
      response.end(
        '<?xml version="1.0"?><Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>',
      );
      return;
    }
    if (operation === 'ListMultipartUploads') {
      request.resume();
      const bucket = decodeURIComponent(url.pathname.split('/')[1] ?? '');
      const prefix = url.searchParams.get('prefix') ?? '';
      const open = this.openUploads()
        .map((id) => ({ id, ...(this.uploadKeys.get(id) as { bucket: string; key: string; initiated: Date }) }))
        .filter((upload) => upload.bucket === bucket && upload.key.startsWith(prefix));
      record.status = 200;
      response.writeHead(200, { 'content-type': 'application/xml' });
      response.end(
        '<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
          `<Bucket>${bucket}</Bucket><Prefix>${prefix}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
          open
            .map(
              (upload) =>
                `<Upload><Key>${upload.key}</Key><UploadId>${upload.id}</UploadId><Initiated>${upload.initiated.toISOString()}</Initiated></Upload>`,
            )
            .join('') +
          '</ListMultipartUploadsResult>',
      );
      return;
    }
    if (operation === 'AbortMultipartUpload') {
      request.resume();
      if (uploadId) this.aborted.add(uploadId);
      record.status = 204;
      response.writeHead(204);
      response.end();
      return;
    }

    const objectRead =
      (request.method === 'GET' || request.method === 'HEAD') &&
      url.pathname.split('/').filter(Boolean).length > 1 &&
      !url.searchParams.has('uploadId');
    if (this.denyMissingKeys && objectRead && (await this.headEtag(url.pathname)) === undefined) {
      request.resume();
      record.status = 403;
      response.writeHead(403, { 'content-type': 'application/xml' });
      response.end('<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
      return;
    }
    const condition = conditionOf(request);
    const conditional: readonly S3Operation[] = ['PutObject', 'CompleteMultipartUpload', 'DeleteObject'];
    if (conditional.includes(operation) && condition) {
      // As S3 does, the condition is decided once the request is complete, not while its body streams: a slow upload
      // must not hold every other conditional request of the key.
      let body: Buffer | undefined;
      if (operation !== 'DeleteObject') {
        body = await completeBody(request);
        if (!body) {
          record.status = 499;
          response.destroy();
          return;
        }
      }
      await this.withKeyLock(url.pathname, async () => {
        const etag = await this.headEtag(url.pathname);
        const holds =
          condition.ifNoneMatch === '*'
            ? etag === undefined
            : etag !== undefined && (condition.ifMatch === '*' || etag === condition.ifMatch);
        if (!holds) {
          if (body === undefined) {
            request.resume();
            await new Promise((resolve) => request.once('end', resolve));
          }
          // S3 answers 404 for If-Match on a missing key, 412 when the condition fails otherwise.
          record.status = etag === undefined && condition.ifMatch ? 404 : 412;
          response.writeHead(record.status, { 'content-type': 'application/xml' });
          response.end(
            `<?xml version="1.0"?><Error><Code>${record.status === 404 ? 'NoSuchKey' : 'PreconditionFailed'}</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>`,
          );
          return;
        }
        await this.forward(request, response, record, url, operation, uploadId, body);
      });
      return;
    }
    await this.forward(request, response, record, url, operation, uploadId);
  }

  private async withKeyLock(key: string, action: () => Promise<void>): Promise<void> {
    const previous = this.keyLocks.get(key) ?? Promise.resolve();
    let release: () => void = () => {};
    const current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const chained = previous.then(() => current);
    this.keyLocks.set(key, chained);
    await previous;
    try {
      await action();
    } finally {
      release();
      if (this.keyLocks.get(key) === chained) this.keyLocks.delete(key);
    }
  }

  private async headEtag(pathname: string): Promise<string | undefined> {
    const [, bucket = '', ...key] = pathname.split('/');
    try {
      const head = await this.upstreamClient.send(
        new HeadObjectCommand({ Bucket: decodeURIComponent(bucket), Key: decodeURIComponent(key.join('/')) }),
      );
      return head.ETag;
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw error;
    }
  }

  private async forward(
    request: http.IncomingMessage,
    response: http.ServerResponse,
    record: ProxiedRequest,
    url: URL,
    operation: S3Operation,
    uploadId: string | undefined,
    /** The request's body, already read. */
    read?: Buffer,
  ): Promise<void> {
    let body = read;
    if (operation === 'PutObject' && !body) {
      body = await completeBody(request);
      if (!body) {
        // Cut short (the client aborted or died): S3 discards such a PUT.
        record.status = 499;
        response.destroy();
        return;
      }
    }
    const upstream = http.request({
      host: this.target.hostname,
      port: this.target.port,
      method: request.method,
      path: request.url,
      headers: request.headers,
    });
    if (body) upstream.end(body);
    else {
      request.pipe(upstream);
      // A client that gives up mid-body (an aborted part) must not leave s3rver waiting for the rest of it.
      request.once('close', () => {
        if (!request.complete) upstream.destroy();
      });
    }
    const upstreamResponse = await new Promise<http.IncomingMessage>((resolve, reject) => {
      upstream.once('response', resolve);
      upstream.once('error', reject);
    });
    record.status = upstreamResponse.statusCode ?? 0;
    if (operation === 'CreateMultipartUpload') {
      const chunks: Buffer[] = [];
      for await (const chunk of upstreamResponse) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const id = /<UploadId>([^<]+)<\/UploadId>/.exec(body.toString())?.[1];
      if (id && record.status === 200) {
        this.created.add(id);
        const [, bucket = '', ...key] = url.pathname.split('/');
        this.uploadKeys.set(id, {
          bucket: decodeURIComponent(bucket),
          key: decodeURIComponent(key.join('/')),
          initiated: new Date(),
        });
      }
      response.writeHead(record.status, upstreamResponse.headers);
      response.end(body);
      return;
    }
    if (operation === 'CompleteMultipartUpload' && uploadId && record.status === 200) this.completed.add(uploadId);
    // A checksum in a header, or announced for a trailer of the aws-chunked body (which s3rver stores as data).
    const sentChecksum = Object.keys(request.headers).some(
      (name) =>
        name.startsWith('x-amz-checksum-') || name === 'x-amz-sdk-checksum-algorithm' || name === 'x-amz-trailer',
    );
    if (operation === 'PutObject' && body && record.status === 200 && !sentChecksum) {
      const crc = new Crc64NvmeJs();
      crc.update(body);
      upstreamResponse.headers['x-amz-checksum-crc64nvme'] = Buffer.from(await crc.digest()).toString('base64');
      upstreamResponse.headers['x-amz-checksum-type'] = 'FULL_OBJECT';
    }
    response.writeHead(record.status, upstreamResponse.headers);
    upstreamResponse.pipe(response);
    await new Promise((resolve) => response.once('close', resolve));
  }
}

function conditionOf(request: http.IncomingMessage): { ifNoneMatch?: string; ifMatch?: string } | undefined {
  const ifNoneMatch = request.headers['if-none-match'];
  const ifMatch = request.headers['if-match'];
  if (ifNoneMatch === undefined && ifMatch === undefined) return undefined;
  return { ifNoneMatch: ifNoneMatch?.trim(), ifMatch: ifMatch?.trim() };
}

/** The whole request body, or undefined when the request ends before its `Content-Length` (or aborts). */
async function completeBody(request: http.IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of request) chunks.push(chunk as Buffer);
  } catch {
    return undefined;
  }
  const body = Buffer.concat(chunks);
  const declared = request.headers['content-length'];
  if (!request.complete || (declared !== undefined && Number(declared) !== body.length)) return undefined;
  return body;
}

function classify(method: string, url: URL): S3Operation {
  const params = url.searchParams;
  if (method === 'POST' && params.has('uploads')) return 'CreateMultipartUpload';
  if (method === 'POST' && params.has('uploadId')) return 'CompleteMultipartUpload';
  if (method === 'PUT' && params.has('uploadId')) return 'UploadPart';
  if (method === 'DELETE' && params.has('uploadId')) return 'AbortMultipartUpload';
  if (method === 'GET' && params.has('uploads')) return 'ListMultipartUploads';
  const objectPath = url.pathname.split('/').filter(Boolean).length > 1;
  if (method === 'PUT' && objectPath) return 'PutObject';
  if (method === 'DELETE' && objectPath) return 'DeleteObject';
  return 'Other';
}
