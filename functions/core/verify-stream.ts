import { once } from 'node:events';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { constants, createGunzip, type Gunzip } from 'node:zlib';
import { IntegrityError, SuspiciousFileError } from './errors.js';

const NEWLINE = 0x0a;

/** Lines longer than this are not parsed (they are counted, and reported as malformed). */
const MAX_CHECKED_LINE = 4 * 1024 * 1024;

/**
 * Counts rows (newline-terminated lines; a last line without newline counts) and the rows that are not valid JSON,
 * one chunk at a time. Holds at most one partial line (bounded), never the file.
 */
export class RowCounter {
  private newlines = 0;
  private lastByte = NEWLINE;
  private sawBytes = false;
  private malformedLines = 0;
  private carry: Buffer[] = [];
  private carryLength = 0;
  private carryTooLong = false;

  constructor(private readonly checkJson = true) {}

  add(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.sawBytes = true;
    let start = 0;
    let index = chunk.indexOf(NEWLINE);
    while (index !== -1) {
      this.newlines++;
      if (this.checkJson) this.checkLine(chunk.subarray(start, index));
      start = index + 1;
      index = chunk.indexOf(NEWLINE, start);
    }
    if (this.checkJson && start < chunk.length) this.keep(chunk.subarray(start));
    this.lastByte = chunk[chunk.length - 1] as number;
  }

  /** Call once the content ended: checks a last line that has no newline. */
  finish(): void {
    if (this.checkJson && (this.carryLength > 0 || this.carryTooLong)) this.checkLine(Buffer.alloc(0));
  }

  get rows(): number {
    return this.sawBytes && this.lastByte !== NEWLINE ? this.newlines + 1 : this.newlines;
  }

  /** Rows that are not valid JSON (empty lines excepted). Copied as they are, counted and reported. */
  get malformed(): number {
    return this.malformedLines;
  }

  private keep(piece: Buffer): void {
    if (this.carryTooLong) return;
    if (this.carryLength + piece.length > MAX_CHECKED_LINE) {
      this.carryTooLong = true;
      this.carry = [];
      this.carryLength = 0;
      return;
    }
    this.carry.push(Buffer.from(piece));
    this.carryLength += piece.length;
  }

  private checkLine(tail: Buffer): void {
    if (this.carryTooLong) {
      this.malformedLines++;
      this.carryTooLong = false;
      return;
    }
    const line = this.carryLength > 0 ? Buffer.concat([...this.carry, tail]) : tail;
    this.carry = [];
    this.carryLength = 0;
    if (line.length === 0 || (line.length === 1 && line[0] === 0x0d)) return;
    try {
      JSON.parse(line.toString('utf8'));
    } catch {
      this.malformedLines++;
    }
  }
}

/**
 * Read the first `count` bytes of a stream without consuming them (they are unshifted back). Returns fewer bytes
 * when the stream is shorter.
 */
export async function peekBytes(stream: Readable, count: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  while (length < count) {
    const chunk: Buffer | null = stream.read();
    if (chunk !== null) {
      chunks.push(chunk);
      length += chunk.length;
      continue;
    }
    if (stream.readableEnded || stream.destroyed) break;
    const ended = await Promise.race([
      once(stream, 'readable').then(() => false),
      once(stream, 'end').then(() => true),
    ]);
    if (ended) break;
  }
  const head = Buffer.concat(chunks);
  if (head.length > 0) stream.unshift(head);
  return head;
}

export function isGzipHead(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/**
 * How far a gzip may inflate before it is refused as suspicious: past `floorBytes` inflated, more than `ratio` times
 * the bytes served so far. Real data stays far below: the simulator's log hours, modelled on the documented rows,
 * inflate about 10 times, the benchmark's 1 GiB hour 2.2 times; deflate's own maximum is about 1,030. So the work per
 * byte served is bounded (at most `ratio` inflated bytes, after the floor), which a gzip bomb would not be.
 */
export interface InflateLimit {
  readonly ratio: number;
  readonly floorBytes: number;
}

export const DEFAULT_INFLATE_LIMIT: InflateLimit = { ratio: 100, floorBytes: 64 * 1024 * 1024 };

export interface VerifyingStreamOptions {
  /** `Content-Length` of the download, when known. */
  readonly expectedBytes?: number;
  /** The content is gzip: inflate a copy on the side to prove it complete and count its rows. */
  readonly gzip: boolean;
  /** Parse every row as JSON to count malformed ones. Default true. */
  readonly checkJson?: boolean;
  /** Default `DEFAULT_INFLATE_LIMIT`. */
  readonly inflateLimit?: InflateLimit;
}

/**
 * A pass-through that checks a download while it streams: counts bytes against `Content-Length`, counts rows, and
 * for gzip content inflates a copy on the side so that a truncated or corrupt gzip fails. A failure errors the
 * stream before it ends, so a sink never commits a short or broken file.
 *
 * The last chunk is held back until every check has passed: a sink that streams to a known length (a single S3
 * `PutObject` with `Content-Length`) has then not sent its last byte when a check fails, so the store never completes
 * the object. Memory: two chunks plus zlib's window and one output chunk.
 *
 * The side inflate is synchronous, into one reused buffer (SyncGunzip below).
 */
export class VerifyingStream extends Transform {
  private bytes = 0;
  private readonly rowCounter: RowCounter;
  private readonly inflater: SyncGunzip | undefined;
  private inflateError: Error | undefined;
  private readonly expectedBytes: number | undefined;
  /** The newest chunk, passed on only when the next one arrives or every check passed at the end. */
  private held: Buffer | undefined;

  constructor(options: VerifyingStreamOptions) {
    super();
    this.rowCounter = new RowCounter(options.checkJson ?? true);
    this.expectedBytes = options.expectedBytes;
    if (options.gzip) {
      const limit = options.inflateLimit ?? DEFAULT_INFLATE_LIMIT;
      let inflated = 0;
      this.inflater = new SyncGunzip(
        (data) => {
          inflated += data.length;
          if (inflated > limit.floorBytes && inflated > limit.ratio * this.bytes) {
            this.inflateError ??= new SuspiciousFileError(
              `suspicious gzip: it inflates to more than ${formatMiB(limit.floorBytes)} and ${limit.ratio} times the ${this.bytes} bytes served so far; not copied`,
            );
            return false;
          }
          this.rowCounter.add(data);
          return true;
        },
        (error) => {
          this.inflateError ??= new IntegrityError(`gzip content is corrupt or truncated (${error.message})`, {
            cause: error,
          });
        },
      );
    }
  }

  get servedBytes(): number {
    return this.bytes;
  }

  get rows(): number {
    return this.rowCounter.rows;
  }

  get malformedRows(): number {
    return this.rowCounter.malformed;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expectedBytes !== undefined && this.bytes > this.expectedBytes) {
      callback(new IntegrityError(`received more bytes than the announced Content-Length ${this.expectedBytes}`));
      return;
    }
    if (this.inflater) this.inflater.write(chunk);
    else this.rowCounter.add(chunk);
    if (this.inflateError) {
      callback(this.inflateError);
      return;
    }
    const previous = this.held;
    this.held = chunk;
    callback(null, previous);
  }

  override _flush(callback: TransformCallback): void {
    if (this.expectedBytes !== undefined && this.bytes !== this.expectedBytes) {
      callback(new IntegrityError(`body ended after ${this.bytes} of ${this.expectedBytes} bytes (Content-Length)`));
      return;
    }
    // Synchronous: the rest of the inflated content is counted, or a truncated gzip fails, before end() returns.
    this.inflater?.end();
    if (this.inflateError) {
      callback(this.inflateError);
      return;
    }
    this.rowCounter.finish();
    callback(null, this.held);
    this.held = undefined;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.held = undefined;
    this.inflater?.close();
    callback(error);
  }
}

function formatMiB(bytes: number): string {
  return `${Math.round(bytes / (1024 * 1024))} MiB`;
}

/** Inflated bytes per output chunk of the side inflate (one buffer, reused). */
const INFLATE_CHUNK = 256 * 1024;

/** The parts of Node's zlib stream that its own synchronous API (`zlib.gunzipSync`) drives. */
interface ZlibInternals {
  readonly _handle: {
    writeSync(
      flush: number,
      input: Buffer,
      inOff: number,
      inLen: number,
      out: Buffer,
      outOff: number,
      outLen: number,
    ): void;
  };
  /** [output space left, input left] after a write. */
  readonly _writeState: Uint32Array;
}

/**
 * Gunzip that runs synchronously on the caller's thread and inflates into one reused output buffer, handing each
 * piece to `onData` before it is overwritten. It drives Node's own zlib binding the way `zlib.gunzipSync` does (same
 * zlib, same checks: CRC-32 and length at the end, concatenated members), but streaming and without allocating:
 * the stream API costs two thread-pool hand-offs and a fresh output buffer per chunk, and measured more CPU and
 * memory than the inflate itself (bench/RESULTS.md, group 1). A corrupt or truncated gzip calls `onError` once.
 */
class SyncGunzip {
  private readonly stream: Gunzip & ZlibInternals;
  private readonly out = Buffer.allocUnsafe(INFLATE_CHUNK);
  private failed = false;

  constructor(
    /** Answers false to stop inflating (the rest of the input is ignored). */
    private readonly onData: (data: Buffer) => boolean,
    private readonly onError: (error: Error) => void,
  ) {
    this.stream = createGunzip() as Gunzip & ZlibInternals;
    // Node's own internals (stable for years, as zlib.gunzipSync uses them): fail loudly, naming why, if a Node.js
    // release ever changes them, rather than with a TypeError mid-copy.
    if (typeof this.stream._handle?.writeSync !== 'function' || !(this.stream._writeState instanceof Uint32Array)) {
      throw new Error(`gzip verification needs zlib internals this Node.js (${process.version}) does not have`);
    }
    // The binding reports an error by destroying the stream, which then also emits it: handled by write().
    this.stream.on('error', () => undefined);
  }

  write(input: Buffer, flush: number = constants.Z_NO_FLUSH): void {
    if (this.failed) return;
    let offset = 0;
    let left = input.length;
    for (;;) {
      this.stream._handle.writeSync(flush, input, offset, left, this.out, 0, this.out.length);
      if (this.stream.destroyed) {
        this.failed = true;
        this.onError(this.stream.errored ?? new Error('zlib failed'));
        return;
      }
      const [outLeft = 0, inLeft = 0] = this.stream._writeState;
      const produced = this.out.length - outLeft;
      if (produced > 0 && !this.onData(this.out.subarray(0, produced))) {
        this.failed = true;
        return;
      }
      offset += left - inLeft;
      left = inLeft;
      // The output buffer had room to spare: zlib took all the input it could.
      if (outLeft !== 0) return;
    }
  }

  /** The input ended: inflate the rest; a gzip that did not reach its end fails ("unexpected end of file"). */
  end(): void {
    this.write(Buffer.alloc(0), constants.Z_FINISH);
    this.close();
  }

  close(): void {
    if (!this.stream.destroyed) this.stream.destroy();
  }
}
