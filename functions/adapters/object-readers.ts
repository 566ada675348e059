import path from 'node:path';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { StoredObjectReader } from '../core/convert-file.js';
import { SinkError } from '../core/errors.js';
import { describeError } from '../core/redact.js';
import { ConfinedFolders, openOwnFile } from './local-dir-sink.js';
import { getStoredObject, type S3Destination } from './s3-sink.js';

/** Reads objects under an S3 bucket and prefix (the JSON layer, for conversion). */
export class S3ObjectReader implements StoredObjectReader {
  constructor(
    private readonly client: S3Client,
    private readonly destination: S3Destination,
  ) {}

  /** The caller's signal aborts the request at any point, the body's streaming included. */
  async open(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable | undefined> {
    try {
      const response = await getStoredObject(this.client, this.destination, key, options.signal);
      return response?.Body as Readable | undefined;
    } catch (error) {
      throw new SinkError(
        `reading ${key} from s3://${this.destination.bucket}/${this.destination.prefix} failed: ${describeError(error)}`,
        { cause: error },
      );
    }
  }
}

/** Reads files under a local directory, never through a symbolic link (the local sink's rule). */
export class LocalDirObjectReader implements StoredObjectReader {
  private readonly root: string;
  private readonly folders: ConfinedFolders;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.folders = new ConfinedFolders(this.root);
  }

  async open(key: string): Promise<Readable | undefined> {
    const file = path.resolve(this.root, key);
    if (!file.startsWith(this.root + path.sep)) throw new SinkError(`key escapes the destination: ${key}`);
    try {
      await this.folders.check(path.dirname(file), key);
      const handle = await openOwnFile(file);
      return handle.createReadStream();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (error instanceof SinkError) throw error;
      throw new SinkError(`reading ${key} from ${this.root} failed: ${describeError(error)}`, { cause: error });
    }
  }
}
