import http from 'node:http';
import { closeServer, listenOnLoopback } from '../loopback-server.js';
import { TEST_ACCOUNT, TEST_REGION } from './cfn.js';
import type { AwsAction } from './iam.js';

export type AwsService = 's3' | 'sqs' | 'dynamodb' | 'secretsmanager';

export interface RecordedAction extends AwsAction {
  /** The API operation (`PutObject`, `UploadPart`, `GetItem`, ...): IAM authorizes several as one action. */
  readonly operation: string;
  /** When the request arrived, epoch ms. */
  readonly at: number;
  /** The emulator's HTTP status (0 when it could not be reached). */
  status: number;
}

/** How the recorder names resources: the queue ARNs of the emulator's queues, by queue name. */
export interface ResourceNaming {
  readonly queueArns: Readonly<Record<string, string>>;
}

/**
 * A recording proxy in front of one emulator, for one function: every request is classified as the IAM action (and
 * resource ARN and condition keys) AWS would authorize it as, then forwarded unchanged. The end-to-end tests check
 * each recorded action against the function's synthesized policy.
 */
export class AwsActionRecorder {
  readonly actions: RecordedAction[] = [];
  url = '';
  private readonly server: http.Server;
  private readonly target: URL;

  constructor(
    readonly service: AwsService,
    targetUrl: string,
    private readonly naming: ResourceNaming,
  ) {
    this.target = new URL(targetUrl);
    this.server = http.createServer((request, response) => {
      this.handle(request, response).catch(() => response.destroy());
    });
  }

  async start(): Promise<string> {
    this.url = await listenOnLoopback(this.server);
    return this.url;
  }

  stop(): Promise<void> {
    return closeServer(this.server);
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://recorder');
    // S3 bodies stream through (they can be large); the other services' JSON bodies are read to classify them.
    const needsBody = this.service !== 's3' || (request.method === 'POST' && url.searchParams.has('delete'));
    const body = needsBody ? await readBody(request) : undefined;
    const at = Date.now();
    const recorded = this.classify(request, url, body).map((action) => ({ ...action, at, status: 0 }));
    this.actions.push(...recorded);

    const upstream = http.request({
      host: this.target.hostname,
      port: this.target.port,
      method: request.method,
      path: request.url,
      headers: request.headers,
    });
    if (body === undefined) {
      request.pipe(upstream);
      // A client that gives up mid-body (an aborted upload, a killed container) must not leave the emulator waiting
      // for the rest of it: pipe() would neither end nor destroy the upstream request.
      request.once('close', () => {
        if (!request.complete) upstream.destroy();
      });
    } else upstream.end(body);
    let upstreamResponse: http.IncomingMessage;
    try {
      upstreamResponse = await new Promise<http.IncomingMessage>((resolve, reject) => {
        upstream.once('response', resolve);
        upstream.once('error', reject);
      });
    } catch {
      response.destroy();
      return;
    }
    for (const action of recorded) action.status = upstreamResponse.statusCode ?? 0;
    response.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
    upstreamResponse.pipe(response);
  }

  private classify(request: http.IncomingMessage, url: URL, body: Buffer | undefined): ClassifiedCall[] {
    switch (this.service) {
      case 's3':
        return classifyS3(request.method ?? 'GET', url, request.headers, body);
      case 'sqs':
        return [this.classifySqs(request, body)];
      case 'dynamodb':
        return [classifyDynamoDb(request, body)];
      case 'secretsmanager':
        return [classifySecretsManager(request, body)];
    }
  }

  private classifySqs(request: http.IncomingMessage, body: Buffer | undefined): ClassifiedCall {
    const operation = targetOperation(request, 'AmazonSQS.');
    const input = parseJson(body);
    const queueName =
      typeof input.QueueUrl === 'string' ? input.QueueUrl.split('/').at(-1) : (input.QueueName as string | undefined);
    const resource = (queueName && this.naming.queueArns[queueName]) ?? `unknown queue ${String(queueName)}`;
    const action = operation.replace(/Batch$/, '');
    return { action: `sqs:${action}`, operation, resource, context: {} };
  }
}

type ClassifiedCall = AwsAction & { readonly operation: string };

function readBody(request: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.once('end', () => resolve(Buffer.concat(chunks)));
    request.once('error', reject);
  });
}

function parseJson(body: Buffer | undefined): Record<string, unknown> {
  try {
    return JSON.parse(body?.toString() || '{}') as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** The operation of a JSON-protocol call (`X-Amz-Target: Prefix.Operation`). */
function targetOperation(request: http.IncomingMessage, prefix: string): string {
  const target = String(request.headers['x-amz-target'] ?? '');
  if (!target.startsWith(prefix)) throw new Error(`unexpected ${prefix} call without its X-Amz-Target: ${target}`);
  return target.slice(prefix.length);
}

/** Path-style S3 requests, as IAM authorizes them (the multipart calls are s3:PutObject). */
function classifyS3(
  method: string,
  url: URL,
  headers: http.IncomingHttpHeaders,
  body: Buffer | undefined,
): ClassifiedCall[] {
  const [, bucket = '', ...keyParts] = url.pathname.split('/');
  const key = decodeURIComponent(keyParts.join('/'));
  const params = url.searchParams;
  const bucketArn = `arn:aws:s3:::${decodeURIComponent(bucket)}`;
  const objectArn = `${bucketArn}/${key}`;
  const action = (
    name: string,
    operation: string,
    resource: string,
    context: Record<string, string> = {},
  ): ClassifiedCall => ({ action: `s3:${name}`, operation, resource, context });
  if (!key) {
    if (params.has('uploads')) return [action('ListBucketMultipartUploads', 'ListMultipartUploads', bucketArn)];
    if (params.has('location')) return [action('GetBucketLocation', 'GetBucketLocation', bucketArn)];
    if (method === 'POST' && params.has('delete')) {
      const keys = [...(body?.toString() ?? '').matchAll(/<Key>([^<]*)<\/Key>/g)].map((match) => match[1] ?? '');
      return keys.map((deleted) => action('DeleteObject', 'DeleteObjects', `${bucketArn}/${deleted}`));
    }
    if (method === 'GET' || method === 'HEAD') {
      const prefix = params.get('prefix');
      return [action('ListBucket', 'ListObjectsV2', bucketArn, prefix === null ? {} : { 's3:prefix': prefix })];
    }
    return [action(`unclassified ${method} on a bucket`, method, bucketArn)];
  }
  // The condition keys S3 gives the object-creating calls: whether the call creates the object (PutObject,
  // CompleteMultipartUpload) or only prepares it (CreateMultipartUpload, UploadPart), and its conditional headers.
  const creation = (creates: boolean): Record<string, string> => ({
    's3:ObjectCreationOperation': String(creates),
    ...conditionKeys(headers),
  });
  const copySource = headers['x-amz-copy-source'];
  const copied =
    typeof copySource === 'string'
      ? [action('GetObject', 'GetObject (copy source)', `arn:aws:s3:::${copySource}`)]
      : [];
  switch (method) {
    case 'GET':
      return [
        params.has('uploadId')
          ? action('ListMultipartUploadParts', 'ListParts', objectArn)
          : action('GetObject', 'GetObject', objectArn),
      ];
    case 'HEAD':
      return [action('GetObject', 'HeadObject', objectArn)];
    case 'PUT': {
      if (params.has('uploadId')) {
        const operation = copied.length > 0 ? 'UploadPartCopy' : 'UploadPart';
        return [action('PutObject', operation, objectArn, creation(false)), ...copied];
      }
      const operation = copied.length > 0 ? 'CopyObject' : 'PutObject';
      return [action('PutObject', operation, objectArn, creation(true)), ...copied];
    }
    case 'POST': {
      const operation = params.has('uploads') ? 'CreateMultipartUpload' : 'CompleteMultipartUpload';
      return [action('PutObject', operation, objectArn, creation(params.has('uploadId')))];
    }
    case 'DELETE': {
      if (params.has('uploadId')) return [action('AbortMultipartUpload', 'AbortMultipartUpload', objectArn)];
      // A delete with If-Match: <ETag> is authorized as s3:DeleteObject and s3:GetObject (AWS, conditional deletes);
      // it reads no object data (no key use).
      const ifMatch = headers['if-match'];
      const read =
        typeof ifMatch === 'string' && ifMatch !== '*'
          ? [action('GetObject', 'DeleteObject (If-Match)', objectArn)]
          : [];
      return [action('DeleteObject', 'DeleteObject', objectArn, conditionKeys(headers)), ...read];
    }
    default:
      return [action(`unclassified ${method}`, method, objectArn)];
  }
}

/** `s3:if-none-match` and `s3:if-match`, the condition keys of S3's conditional headers, when the request has them. */
function conditionKeys(headers: http.IncomingHttpHeaders): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const header of ['if-none-match', 'if-match'] as const) {
    const value = headers[header];
    if (typeof value === 'string') keys[`s3:${header}`] = value;
  }
  return keys;
}

function classifyDynamoDb(request: http.IncomingMessage, body: Buffer | undefined): ClassifiedCall {
  const operation = targetOperation(request, 'DynamoDB_20120810.');
  const input = parseJson(body) as {
    TableName?: string;
    Key?: Record<string, { S?: string }>;
    Item?: Record<string, { S?: string }>;
  };
  const table = input.TableName ?? '';
  const resource = table.startsWith('arn:') ? table : `arn:aws:dynamodb:${TEST_REGION}:${TEST_ACCOUNT}:table/${table}`;
  // Our tables' partition key is `pk`: the value is what dynamodb:LeadingKeys conditions see.
  const leading = (input.Key ?? input.Item)?.pk?.S;
  return {
    action: `dynamodb:${operation}`,
    operation,
    resource,
    context: leading === undefined ? {} : { 'dynamodb:LeadingKeys': [leading] },
  };
}

function classifySecretsManager(request: http.IncomingMessage, body: Buffer | undefined): ClassifiedCall {
  const operation = targetOperation(request, 'secretsmanager.');
  const secretId = String(parseJson(body).SecretId ?? '');
  return { action: `secretsmanager:${operation}`, operation, resource: secretId, context: {} };
}
