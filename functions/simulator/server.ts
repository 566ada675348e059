import { createHmac, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';
import { DAY_MS, formatHour, HOUR_MS, LOG_RETENTION_MS } from '../core/hours.js';
import { type IdentifierType, isIdentifierType, parseAppUuid } from '../core/identifiers.js';
import {
  audienceRows,
  type DatasetOptions,
  DEFAULT_DATASET,
  latestGeneration,
  logRows,
  profileChangeRows,
  profileRows,
  serializeRows,
} from './dataset.js';
import { API_FAULTS, FaultPlan, type FaultRule, FILE_FAULTS, isFaultKind } from './faults.js';

/** Credentials the simulator accepts unless told otherwise. Documented in the README; they guard nothing real. */
export const SIMULATOR_DEFAULT_CREDENTIALS = { apiKey: 'simulator-key', apiSecret: 'simulator-secret' } as const;

export interface SimulatorOptions {
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  readonly credentials?: { readonly apiKey: string; readonly apiSecret: string };
  /** API requests per minute per key before `429`. Default 50, as documented. */
  readonly ratePerMinute?: number;
  /** Length of the rate window, ms: tests shrink it (with the rate) to see minutes' pacing in seconds. Default 60 s. */
  readonly rateWindowMs?: number;
  readonly dataset?: Partial<DatasetOptions>;
  /** The simulator's clock. */
  readonly now?: () => number;
  /** How long after an hour ends its log file becomes available. Default 20 minutes. */
  readonly readyLagMs?: number;
  /** Lifetime of presigned URLs. Default 2 days (like the documentation's sample). */
  readonly urlTtlMs?: number;
  /** App-hours served as large files: `"<app>/<YYYY-MM-DDTHH>"` to compressed size in bytes (cached on disk). */
  readonly largeHours?: Readonly<Record<string, number>>;
  /** Where large files are cached. Default `<tmp>/localytics-simulator-cache`. */
  readonly cacheDir?: string;
  /** Put one malformed JSON line in profile files, as the documentation's sample does. */
  readonly malformedProfileLine?: boolean;
}

export interface RequestRecord {
  /** Epoch ms when the request arrived. */
  readonly at: number;
  readonly kind: 'api' | 'file' | 'admin';
  readonly method: string;
  /** Path without query string (no signatures here). */
  readonly path: string;
  status: number;
  /** Whether an `Authorization` header was sent. */
  readonly authorization: boolean;
  /** For files: the logical file name, e.g. `log/<app>/<hour>`. */
  readonly file?: string;
}

export interface ServedFile {
  readonly name: string;
  readonly bytes: number;
  readonly rows: number;
  readonly gzip: boolean;
}

type FileRef =
  | { readonly t: 'log'; readonly app: string; readonly hour: number }
  | { readonly t: 'aud'; readonly id: string; readonly type: IdentifierType; readonly g: number }
  | { readonly t: 'prof'; readonly id: string; readonly g: number }
  | { readonly t: 'chg'; readonly id: string; readonly n: number };

interface FileBody {
  readonly gzip: boolean;
  readonly rows: number;
  readonly buffer?: Buffer;
  readonly diskPath?: string;
  readonly size: number;
}

/**
 * The Localytics Export APIs on loopback: both lists, the three exports with Basic auth and `302`s to presigned-style
 * URLs it serves itself, 404 for hours not ready, the per-key rate limit, `profile_changes` cursors, switchable
 * faults, and a record of every request.
 */
export class LocalyticsSimulator {
  readonly faults = new FaultPlan();
  readonly requests: RequestRecord[] = [];
  /** Files whose body was sent completely, in order. */
  readonly served: ServedFile[] = [];
  readonly dataset: DatasetOptions;
  private readonly server: http.Server;
  private readonly signingKey: string;
  private readonly credentials: { apiKey: string; apiSecret: string };
  private readonly ratePerMinute: number;
  private readonly rateWindowMs: number;
  private readonly window = new Map<string, number[]>();
  private readonly changeCursor = new Map<string, number>();
  /** Set by the `refresh` fault: the generation Localytics made at that moment. */
  private refreshedAt?: number;
  private readonly now: () => number;
  private readonly readyLagMs: number;
  private readonly urlTtlMs: number;
  private readonly cacheDir: string;
  private baseUrl = '';
  private readonly largeHours: Map<string, number>;

  constructor(private readonly options: SimulatorOptions = {}) {
    this.dataset = { ...DEFAULT_DATASET, ...options.dataset };
    this.credentials = { ...(options.credentials ?? SIMULATOR_DEFAULT_CREDENTIALS) };
    this.ratePerMinute = options.ratePerMinute ?? 50;
    this.rateWindowMs = options.rateWindowMs ?? 60_000;
    this.now = options.now ?? Date.now;
    this.readyLagMs = options.readyLagMs ?? 20 * 60_000;
    this.urlTtlMs = options.urlTtlMs ?? 2 * DAY_MS;
    this.cacheDir = options.cacheDir ?? path.join(os.tmpdir(), 'localytics-simulator-cache');
    this.largeHours = new Map(Object.entries(options.largeHours ?? {}));
    this.signingKey = `sim-${this.dataset.seed}-${process.pid}-${Math.random()}`;
    this.server = http.createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) this.send(response, 500, { error: String(error) });
        else response.destroy();
      });
    });
    this.server.keepAliveTimeout = 5_000;
  }

  get url(): string {
    return this.baseUrl;
  }

  async start(): Promise<string> {
    const host = this.options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, host, () => resolve());
    });
    const { port } = this.server.address() as AddressInfo;
    this.baseUrl = `http://${host}:${port}`;
    return this.baseUrl;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Serve one app-hour as a large file of about `bytes` (generated once, cached on disk). */
  setLargeHour(appUuid: string, hour: number, bytes: number): void {
    this.largeHours.set(`${appUuid}/${formatHour(hour)}`, bytes);
  }

  /** The exact bytes the file host serves for a log hour (gzip), for checking what landed. */
  async logHourFile(appUuid: string, hour: number): Promise<Readable> {
    const body = await this.fileBody({ t: 'log', app: appUuid, hour });
    return body.buffer ? Readable.from([body.buffer]) : createReadStream(body.diskPath as string);
  }

  /** The current generation of audiences and profiles: the daily one, or a refresh that came after it. */
  generation(): number {
    return Math.max(latestGeneration(this.now()), this.refreshedAt ?? 0);
  }

  /** The `profile_changes` cursor of a profile database: how many change sets its 302s have consumed. */
  changeSetsConsumed(profileDbId: string): number {
    return this.changeCursor.get(profileDbId) ?? 0;
  }

  apiRequests(): RequestRecord[] {
    return this.requests.filter((record) => record.kind === 'api');
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://simulator');
    const record: RequestRecord = {
      at: this.now(),
      kind: url.pathname.startsWith('/_admin') ? 'admin' : url.pathname.startsWith('/_files/') ? 'file' : 'api',
      method: request.method ?? 'GET',
      path: url.pathname,
      status: 0,
      authorization: request.headers.authorization !== undefined,
    };
    response.once('finish', () => {
      record.status = response.statusCode;
    });
    response.once('close', () => {
      if (record.status === 0) record.status = response.statusCode;
    });
    if (record.kind === 'admin') return this.handleAdmin(request, response, url);
    this.requests.push(record);
    if (record.kind === 'file') return this.handleFile(response, url, record);
    return this.handleApi(request, response, url);
  }

  // ---- API ----------------------------------------------------------------------------------------------------

  private async handleApi(request: http.IncomingMessage, response: http.ServerResponse, url: URL): Promise<void> {
    if (request.method !== 'GET') return this.send(response, 405, { error: 'method not allowed' });
    const key = this.authenticate(request.headers.authorization);
    if (!key) {
      response.setHeader('www-authenticate', 'Basic realm="Localytics"');
      return this.send(response, 401, { error: 'The provided authentication parameters were not valid.' });
    }
    const fault = this.faults.take(API_FAULTS, url.pathname);
    // A refresh between our list and our file request: from this request on, everything is the new generation.
    if (fault?.kind === 'refresh') this.refreshedAt = Math.floor(this.now() / 1000) * 1000;
    if (fault?.kind === 'unauthorized') return this.send(response, 401, { error: 'not valid' });
    if (fault?.kind === 'throttle' || !this.admit(key)) {
      const retry = fault ? fault.retryAfterSeconds : this.retryAfterSeconds(key);
      if (retry !== undefined) response.setHeader('retry-after', String(retry));
      return this.send(response, 429, { error: 'You have met your request per minute limitation.' });
    }
    if (fault?.kind === 'server_error') return this.send(response, 500, { error: 'internal error' });

    const segments = url.pathname.split('/').filter(Boolean);
    if (segments[0] !== 'v1' || segments[1] !== 'exports') return this.send(response, 404, { error: 'not found' });
    const [, , resource, ...rest] = segments;
    if (resource === 'audiences' && rest.length === 0) return this.sendList(response, fault, this.audienceList());
    if (resource === 'profiles' && rest.length === 0) return this.sendList(response, fault, this.profileList());
    if (resource === 'audiences' && rest.length === 2) return this.resolveAudience(response, rest[0], rest[1]);
    if (resource === 'profiles' && rest.length === 2) return this.resolveProfile(response, rest[0], rest[1]);
    if (resource === 'analytics' && rest[0] === 'logs' && rest.length === 6) {
      return this.resolveLogHour(response, rest.slice(1) as string[]);
    }
    return this.send(response, 404, { error: 'The source type is unknown.' });
  }

  private authenticate(header: string | undefined): string | undefined {
    if (!header?.startsWith('Basic ')) return undefined;
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const expected = `${this.credentials.apiKey}:${this.credentials.apiSecret}`;
    const a = Buffer.from(decoded);
    const b = Buffer.from(expected);
    return a.length === b.length && timingSafeEqual(a, b) ? this.credentials.apiKey : undefined;
  }

  /** Sliding window per key (60 s): admit when fewer than `ratePerMinute` requests were admitted in it. */
  private admit(key: string): boolean {
    const now = this.now();
    const times = (this.window.get(key) ?? []).filter((time) => time > now - this.rateWindowMs);
    this.window.set(key, times);
    if (times.length >= this.ratePerMinute) return false;
    times.push(now);
    return true;
  }

  private retryAfterSeconds(key: string): number {
    const oldest = this.window.get(key)?.[0] ?? this.now();
    return Math.max(1, Math.ceil((oldest + this.rateWindowMs - this.now()) / 1000));
  }

  private sendList(response: http.ServerResponse, fault: FaultRule | undefined, list: unknown[]) {
    if (fault?.kind === 'html') {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
      return;
    }
    if (fault?.kind === 'malformed_list') return this.send(response, 200, { data: list });
    if (fault?.kind === 'wrong_types') {
      return this.send(
        response,
        200,
        list.map((entry) => ({ ...(entry as object), results_count: 'many', source_id: { id: 1 } })),
      );
    }
    if (fault?.kind === 'oversized_list') {
      const padding = 'x'.repeat(1024);
      return this.send(
        response,
        200,
        Array.from({ length: 6 * 1024 }, (_, i) => ({ ...(list[0] as object), name: `${padding}${i}` })),
      );
    }
    this.send(response, 200, list);
  }

  private audienceList(): unknown[] {
    const generation = this.generation();
    return this.dataset.audiences.flatMap((audience, index) =>
      audience.identifierTypes.map((type, typeIndex) => ({
        id: 100 + index * 10 + typeIndex,
        name: audience.name,
        source_type: 'audiences',
        source_id: audience.audienceId,
        job_type: type,
        results_count: audienceRows(this.dataset, audience.audienceId, type, generation).length,
        results_generated_at: iso(generation),
        results_expire_at: iso(generation + 45 * DAY_MS),
      })),
    );
  }

  private profileList(): unknown[] {
    const generation = this.generation();
    return this.dataset.profileDbs.flatMap((db, index) => [
      {
        id: 300 + index * 10,
        name: db.name,
        source_type: 'profile',
        source_id: db.profileDbId,
        job_type: 'profile',
        results_count:
          profileRows(this.dataset, db.profileDbId, generation).length + (this.options.malformedProfileLine ? 1 : 0),
        results_generated_at: iso(generation),
        results_expire_at: iso(generation + 45 * DAY_MS),
      },
      {
        id: 301 + index * 10,
        name: db.name,
        source_type: 'profile',
        source_id: db.profileDbId,
        job_type: 'profile_changes',
        results_count: profileChangeRows(this.dataset, db.profileDbId, this.changeSetsConsumed(db.profileDbId) + 1)
          .length,
        results_generated_at: iso(generation),
        results_expire_at: iso(generation + 45 * DAY_MS),
      },
    ]);
  }

  private resolveAudience(response: http.ServerResponse, id = '', type = '') {
    if (!isIdentifierType(type)) return this.send(response, 404, { error: 'The source type is unknown.' });
    const audience = this.dataset.audiences.find((candidate) => candidate.audienceId === id);
    if (!audience?.identifierTypes.includes(type)) {
      return this.send(response, 403, { error: 'The Org does not have access to the specified audience.' });
    }
    this.redirect(response, { t: 'aud', id, type, g: this.generation() });
  }

  private resolveProfile(response: http.ServerResponse, id = '', jobType = '') {
    if (jobType !== 'profile' && jobType !== 'profile_changes') {
      return this.send(response, 404, { error: 'The source type is unknown.' });
    }
    if (!this.dataset.profileDbs.some((db) => db.profileDbId === id)) {
      return this.send(response, 403, { error: 'The Org does not have access to the specified Exports.' });
    }
    if (jobType === 'profile') return this.redirect(response, { t: 'prof', id, g: this.generation() });
    // Every 302 consumes the change set: the cursor moves now, whether or not the file is ever downloaded.
    const sequence = this.changeSetsConsumed(id) + 1;
    this.changeCursor.set(id, sequence);
    this.redirect(response, { t: 'chg', id, n: sequence });
  }

  private resolveLogHour(response: http.ServerResponse, parts: string[]) {
    const [appText = '', yearText = '', monthText = '', dayText = '', hourText = ''] = parts;
    const app = parseAppUuid(appText);
    const numbers = [yearText, monthText, dayText, hourText].map((text) =>
      /^\d{1,4}$/.test(text) ? Number(text) : NaN,
    );
    const [year, month, day, hourOfDay] = numbers as [number, number, number, number];
    const hour = Date.UTC(year, month - 1, day, hourOfDay);
    const valid =
      app !== undefined &&
      this.dataset.apps.includes(app) &&
      numbers.every(Number.isFinite) &&
      month >= 1 &&
      month <= 12 &&
      hourOfDay <= 23 &&
      new Date(hour).getUTCDate() === day;
    const now = this.now();
    if (!valid || hour + HOUR_MS + this.readyLagMs > now || hour < now - LOG_RETENTION_MS) {
      return this.send(response, 404, { error: 'Not found or not completed yet.' });
    }
    this.redirect(response, { t: 'log', app, hour });
  }

  private redirect(response: http.ServerResponse, ref: FileRef): void {
    const token = Buffer.from(JSON.stringify(ref)).toString('base64url');
    const expires = Math.floor((this.now() + this.urlTtlMs) / 1000);
    const signature = this.sign(token, expires);
    const location = `${this.baseUrl}/_files/${token}/${fileName(ref)}?AWSAccessKeyId=SIMULATOR&Expires=${expires}&Signature=${signature}`;
    response.writeHead(302, { location, 'content-length': '0' });
    response.end();
  }

  private sign(token: string, expires: number): string {
    return createHmac('sha256', this.signingKey).update(`${token}\n${expires}`).digest('base64url');
  }

  // ---- File host ----------------------------------------------------------------------------------------------

  private async handleFile(response: http.ServerResponse, url: URL, record: RequestRecord): Promise<void> {
    const [, , token = ''] = url.pathname.split('/');
    const expires = Number(url.searchParams.get('Expires'));
    const signature = url.searchParams.get('Signature') ?? '';
    const expected = this.sign(token, expires);
    if (signature.length !== expected.length || !timingSafeEqual(Buffer.from(signature), Buffer.from(expected))) {
      return this.sendXml(
        response,
        403,
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match.',
      );
    }
    const ref = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as FileRef;
    const name = logicalName(ref);
    (record as { file?: string }).file = name;
    const fault = this.faults.take(FILE_FAULTS, name);
    if (fault?.kind === 'expire' || expires * 1000 < this.now()) {
      return this.sendXml(response, 403, 'AccessDenied', 'Request has expired');
    }
    if (fault?.kind === 'file_server_error')
      return this.sendXml(response, 503, 'SlowDown', 'Please reduce your request rate.');
    const body = fault?.kind === 'empty' ? plain('') : await this.fileBody(ref);
    const headers: http.OutgoingHttpHeaders = {
      'content-type': body.gzip ? 'application/gzip' : 'application/json',
    };
    if (fault?.kind !== 'truncate' || !body.gzip) headers['content-length'] = String(body.size);
    response.writeHead(200, headers);
    const source = body.buffer ? Readable.from([body.buffer]) : createReadStream(body.diskPath as string);
    let complete = false;
    try {
      complete = await this.stream(source, response, fault, body);
    } finally {
      source.destroy();
    }
    if (complete) this.served.push({ name, bytes: body.size, rows: body.rows, gzip: body.gzip });
  }

  /** Send the body, applying a file fault; true when every byte was sent. */
  private async stream(
    source: Readable,
    response: http.ServerResponse,
    fault: FaultRule | undefined,
    body: FileBody,
  ): Promise<boolean> {
    const cutAt = Math.floor(body.size / 2);
    let sent = 0;
    let corrupted = false;
    for await (const piece of source) {
      const chunk = piece as Buffer;
      for (let offset = 0; offset < chunk.length; offset += 64 * 1024) {
        let slice = chunk.subarray(offset, offset + 64 * 1024);
        if ((fault?.kind === 'reset' || fault?.kind === 'truncate') && sent + slice.length > cutAt) {
          slice = slice.subarray(0, cutAt - sent);
          if (slice.length > 0) response.write(slice);
          // reset: the connection dies; truncate: gzip stops early (chunked, clean end) or the socket closes short.
          if (fault.kind === 'truncate' && body.gzip) response.end();
          else await new Promise((resolve) => setTimeout(resolve, 20)).then(() => response.socket?.destroy());
          return false;
        }
        if (fault?.kind === 'corrupt' && !corrupted && sent + slice.length > cutAt) {
          slice = Buffer.from(slice);
          const at = Math.max(0, cutAt - sent);
          for (let i = at; i < Math.min(slice.length, at + 16); i++) slice[i] = (slice[i] as number) ^ 0xff;
          corrupted = true;
        }
        // slow: pause before each piece, so even a one-piece file stays in flight.
        if (fault?.kind === 'slow') await new Promise((resolve) => setTimeout(resolve, fault.delayMs ?? 50));
        if (response.destroyed) return false;
        if (!response.write(slice)) await drainOrClose(response);
        sent += slice.length;
        if (response.destroyed) return false;
      }
    }
    response.end();
    return true;
  }

  private async fileBody(ref: FileRef): Promise<FileBody> {
    switch (ref.t) {
      case 'log': {
        const large = this.largeHours.get(`${ref.app}/${formatHour(ref.hour)}`);
        if (large) return this.largeLogFile(ref.app, ref.hour, large);
        const rows = logRows(this.dataset, ref.app, ref.hour);
        const buffer = gzipSync(serializeRows(rows));
        return { gzip: true, rows: rows.length, buffer, size: buffer.length };
      }
      case 'aud':
        return plain(serializeRows(audienceRows(this.dataset, ref.id, ref.type, ref.g)));
      case 'prof': {
        let text = serializeRows(profileRows(this.dataset, ref.id, ref.g));
        // The documentation's own sample has a malformed line: files are copied byte for byte regardless.
        if (this.options.malformedProfileLine) text += '{"_ll.language":"en", "favorite_place":"Rejuvenation Room"}}\n';
        return plain(text);
      }
      case 'chg':
        return plain(serializeRows(profileChangeRows(this.dataset, ref.id, ref.n)));
    }
  }

  /** A big gzip log file, generated once to disk: realistic rows repeated, stored (level 0) so size ≈ target. */
  private readonly largeFiles = new Map<string, Promise<FileBody>>();

  private largeLogFile(app: string, hour: number, targetBytes: number): Promise<FileBody> {
    const id = `${app}/${hour}/${targetBytes}`;
    let file = this.largeFiles.get(id);
    if (!file) {
      file = this.buildLargeLogFile(app, hour, targetBytes);
      this.largeFiles.set(id, file);
      file.catch(() => this.largeFiles.delete(id));
    }
    return file;
  }

  private async buildLargeLogFile(app: string, hour: number, targetBytes: number): Promise<FileBody> {
    const diskPath = path.join(this.cacheDir, `${this.dataset.seed}-${app}-${hour}-${targetBytes}.json.gz`);
    const rowsPath = `${diskPath}.rows`;
    if (!existsSync(diskPath) || !existsSync(rowsPath)) {
      await mkdir(this.cacheDir, { recursive: true });
      const block = Buffer.from(
        serializeRows(logRows({ ...this.dataset, rowsPerHour: { min: 3000, max: 3000 } }, app, hour)),
      );
      const blockRows = 3000;
      const repeats = Math.max(1, Math.ceil(targetBytes / block.length));
      async function* blocks() {
        for (let i = 0; i < repeats; i++) yield block;
      }
      const temp = `${diskPath}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
      await pipeline(Readable.from(blocks()), createGzip({ level: 0 }), createWriteStream(temp));
      await rename(temp, diskPath);
      await writeFile(rowsPath, String(repeats * blockRows));
    }
    const size = (await stat(diskPath)).size;
    const rows = Number(await readFile(rowsPath, 'utf8'));
    return { gzip: true, rows, diskPath, size };
  }

  // ---- Admin --------------------------------------------------------------------------------------------------

  private async handleAdmin(request: http.IncomingMessage, response: http.ServerResponse, url: URL): Promise<void> {
    const route = `${request.method} ${url.pathname}`;
    if (route === 'GET /_admin/requests') return this.send(response, 200, this.requests);
    if (route === 'GET /_admin/served') return this.send(response, 200, this.served);
    if (route === 'GET /_admin/faults') return this.send(response, 200, this.faults.pending);
    if (route === 'DELETE /_admin/faults') {
      this.faults.clear();
      return this.send(response, 204, undefined);
    }
    if (route === 'POST /_admin/faults') {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      let rule: FaultRule;
      try {
        rule = JSON.parse(Buffer.concat(chunks).toString('utf8')) as FaultRule;
      } catch {
        return this.send(response, 400, { error: 'body must be JSON: {"kind": ..., "count": n, "match": "..."}' });
      }
      if (!isFaultKind(rule.kind))
        return this.send(response, 400, { error: `unknown fault kind ${String(rule.kind)}` });
      this.faults.add(rule);
      return this.send(response, 201, this.faults.pending);
    }
    return this.send(response, 404, { error: 'unknown admin route' });
  }

  private send(response: http.ServerResponse, status: number, body: unknown): void {
    if (body === undefined) {
      response.writeHead(status);
      response.end();
      return;
    }
    const text = JSON.stringify(body);
    response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    response.end(text);
  }

  private sendXml(response: http.ServerResponse, status: number, code: string, message: string): void {
    const text = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
    response.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(text) });
    response.end(text);
  }
}

function plain(text: string): FileBody {
  const buffer = Buffer.from(text);
  const rows = text.length === 0 ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  return { gzip: false, rows, buffer, size: buffer.length };
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function fileName(ref: FileRef): string {
  switch (ref.t) {
    case 'log':
      return `${new Date(ref.hour).getUTCHours().toString().padStart(2, '0')}.log.gz`;
    case 'aud':
      return `audience-${ref.id}-${ref.type}.json`;
    case 'prof':
      return `profile-${ref.id}.json`;
    case 'chg':
      return `profile-changes-${ref.id}-${ref.n}.json`;
  }
}

/** The name tests and fault rules use for a file: `log/<app>/<YYYY-MM-DDTHH>`, `audience/<id>/<type>`, ... */
export function logicalName(ref: FileRef): string {
  switch (ref.t) {
    case 'log':
      return `log/${ref.app}/${formatHour(ref.hour)}`;
    case 'aud':
      return `audience/${ref.id}/${ref.type}`;
    case 'prof':
      return `profile/${ref.id}`;
    case 'chg':
      return `profile_changes/${ref.id}/${ref.n}`;
  }
}

/** Wait until the response can take more, or is gone (a client that hung up never drains). */
function drainOrClose(response: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.once('drain', done);
    response.once('close', done);
  });
}
