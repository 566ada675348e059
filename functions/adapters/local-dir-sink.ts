import { createHash, randomBytes } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import {
  type FileHandle,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ObjectExistsError, SinkError } from '../core/errors.js';
import type { ObjectSink, StoredObject, VersionedText, WriteOptions } from '../core/ports.js';
import { describeError } from '../core/redact.js';
import { sleep } from '../core/sleep.js';

/** Temporary files start with `.` so that a half-written file is never mistaken for data (Athena ignores them). */
const TEMP_MARKER = '.partial-';

/**
 * Files hold presigned URLs (`_state/`) and personal data (audiences, profiles): readable by their owner only,
 * whatever the umask.
 */
const FILE_MODE = 0o600;

/**
 * An `ObjectSink` over a local directory: temp file, then an atomic rename. Every operation first checks that no
 * folder between the destination and the file is a symbolic link (the destination itself may be one), and files
 * are read without following a link: nothing is written, read or deleted outside the destination.
 */
export class LocalDirSink implements ObjectSink {
  readonly location: string;
  private readonly folders: ConfinedFolders;

  constructor(root: string) {
    this.location = path.resolve(root);
    this.folders = new ConfinedFolders(this.location);
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await stat(await this.confinedPath(key))).isFile();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new SinkError(`checking ${key} in ${this.location} failed: ${describeError(error)}`, { cause: error });
    }
  }

  async *list(prefix: string, options: { startAfter?: string } = {}): AsyncIterable<StoredObject> {
    const slash = prefix.lastIndexOf('/');
    const baseKey = slash >= 0 ? prefix.slice(0, slash + 1) : '';
    // Deeper folders are entered only when they are real ones (walk below): the starting one is checked here.
    await this.folders.check(path.join(this.location, baseKey), prefix);
    yield* this.walk(baseKey, prefix, options.startAfter ?? '');
  }

  async write(key: string, body: Readable, options: WriteOptions): Promise<{ bytes: number }> {
    let target: string;
    try {
      target = await this.confinedPath(key, { create: true });
    } catch (error) {
      body.destroy();
      throw error;
    }
    const temp = tempPathFor(target);
    try {
      await removeAbandonedTempFiles(target);
      await pipeline(body, createWriteStream(temp, { flags: 'wx', mode: FILE_MODE }), { signal: options.signal });
      const size = await syncFile(temp);
      // link() fails when the target exists: a write that only creates, as S3's If-None-Match.
      if (options.replace) await rename(temp, target);
      else await link(temp, target);
      await syncDirectory(path.dirname(target));
      return { bytes: size };
    } catch (error) {
      body.destroy();
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new ObjectExistsError(`${key} in ${this.location} exists already`, { cause: error });
      }
      throw new SinkError(`writing ${key} to ${this.location} failed: ${describeError(error)}`, { cause: error });
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  async readText(key: string): Promise<string | undefined> {
    try {
      return await readOwnFile(await this.confinedPath(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (error instanceof SinkError) throw error;
      throw new SinkError(`reading ${key} from ${this.location} failed: ${describeError(error)}`, { cause: error });
    }
  }

  async writeText(key: string, text: string): Promise<void> {
    const target = await this.confinedPath(key, { create: true });
    const temp = tempPathFor(target);
    try {
      await writeFile(temp, text, { flag: 'wx', flush: true, mode: FILE_MODE });
      await rename(temp, target);
      await syncDirectory(path.dirname(target));
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw new SinkError(`writing ${key} to ${this.location} failed: ${describeError(error)}`, { cause: error });
    }
  }

  async readVersioned(key: string): Promise<VersionedText | undefined> {
    const text = await this.readText(key);
    return text === undefined ? undefined : { text, version: digest(text) };
  }

  async createText(key: string, text: string): Promise<string | undefined> {
    const target = await this.confinedPath(key, { create: true });
    const temp = tempPathFor(target);
    try {
      await writeFile(temp, text, { flag: 'wx', flush: true, mode: FILE_MODE });
      // link() fails when the target exists: an atomic create-if-absent of a complete file.
      await link(temp, target);
      await syncDirectory(path.dirname(target));
      return digest(text);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
      throw new SinkError(`creating ${key} in ${this.location} failed: ${describeError(error)}`, { cause: error });
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  async replaceText(key: string, text: string, version: string): Promise<string | undefined> {
    const target = await this.confinedPath(key);
    if (!(await this.exists(key))) return undefined;
    try {
      // Compare and swap under a per-key lock file: readers never see a partial file (rename), and of several
      // writers that read the same version exactly one finds it still there.
      return await withLock(target, async () => {
        if (!(await holdsVersion(target, version))) return undefined;
        const temp = tempPathFor(target);
        try {
          await writeFile(temp, text, { flag: 'wx', flush: true, mode: FILE_MODE });
          await rename(temp, target);
        } finally {
          await unlink(temp).catch(() => undefined);
        }
        await syncDirectory(path.dirname(target));
        return digest(text);
      });
    } catch (error) {
      throw new SinkError(`replacing ${key} in ${this.location} failed: ${describeError(error)}`, { cause: error });
    }
  }

  async delete(key: string): Promise<void> {
    // A link as the last component is removed itself, never what it points to.
    await rm(await this.confinedPath(key), { force: true });
  }

  async deleteIfUnchanged(key: string, version: string): Promise<boolean> {
    const target = await this.confinedPath(key);
    try {
      // Under the key's lock, as replaceText: a record another writer replaced meanwhile is not ours to delete.
      return await withLock(target, async () => {
        if (!(await holdsVersion(target, version))) return false;
        await unlink(target);
        await syncDirectory(path.dirname(target));
        return true;
      });
    } catch (error) {
      throw new SinkError(`deleting ${key} in ${this.location} failed: ${describeError(error)}`, { cause: error });
    }
  }

  /** The file of `key`, once its folder is known to be a real folder inside the destination (created first). */
  private async confinedPath(key: string, options: { create?: boolean } = {}): Promise<string> {
    const resolved = path.resolve(this.location, key);
    if (!resolved.startsWith(this.location + path.sep)) throw new SinkError(`key escapes the destination: ${key}`);
    if (options.create) await this.folders.create(path.dirname(resolved), key);
    else await this.folders.check(path.dirname(resolved), key);
    return resolved;
  }

  private async *walk(dirKey: string, prefix: string, startAfter: string): AsyncGenerator<StoredObject> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(path.join(this.location, dirKey), { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new SinkError(`listing ${dirKey || '/'} in ${this.location} failed: ${describeError(error)}`, {
        cause: error,
      });
    }
    const named = entries
      .filter((entry) => !entry.name.includes(TEMP_MARKER))
      .map((entry) => ({ entry, key: `${dirKey}${entry.name}${entry.isDirectory() ? '/' : ''}` }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const { entry, key } of named) {
      if (entry.isDirectory()) {
        // Descend only where keys can still match the prefix and sort after startAfter.
        if (!(key.startsWith(prefix) || prefix.startsWith(key))) continue;
        if (startAfter && key < startAfter && !startAfter.startsWith(key)) continue;
        yield* this.walk(key, prefix, startAfter);
      } else if (entry.isFile() && key.startsWith(prefix) && key > startAfter) {
        const info = await stat(path.join(this.location, key));
        yield { key, size: info.size, lastModified: info.mtime };
      }
    }
  }
}

/**
 * Checks that a folder is a real folder inside a destination: its real path is the destination's real path plus the
 * same relative path, so no folder in between is a symbolic link.
 */
export class ConfinedFolders {
  private realRoot: string | undefined;

  constructor(private readonly root: string) {}

  /**
   * Create `folder` one level at a time, never through a link: a `mkdir -p` would create folders wherever a link
   * points before any check could see it.
   */
  async create(folder: string, key: string): Promise<void> {
    await mkdir(this.root, { recursive: true });
    let current = this.root;
    for (const part of path.relative(this.root, folder).split(path.sep).filter(Boolean)) {
      current = path.join(current, part);
      await mkdir(current).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
      if (!(await lstat(current)).isDirectory()) {
        throw new SinkError(
          `refusing ${key}: ${path.relative(this.root, current)} in ${this.root} is a symbolic link or a file, not a folder`,
        );
      }
    }
  }

  /** Throws `SinkError` naming `key` when a folder between the root and `folder` is a link; a missing one is fine. */
  async check(folder: string, key: string): Promise<void> {
    let real: string;
    try {
      this.realRoot ??= await realpath(this.root);
      real = await realpath(folder);
    } catch (error) {
      // Nothing there yet: nothing to read, list or delete, and a write creates its folders first.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new SinkError(`checking ${key} in ${this.root} failed: ${describeError(error)}`, { cause: error });
    }
    const expected = path.join(this.realRoot, path.relative(this.root, folder));
    if (real !== expected) {
      throw new SinkError(
        `refusing ${key}: a folder on its path in ${this.root} is a symbolic link (to ${real}); the destination must hold real folders`,
      );
    }
  }
}

/** A file's text, not following a link in its last component (`O_NOFOLLOW`: `ELOOP` becomes a `SinkError`). */
export async function readOwnFile(file: string): Promise<string> {
  const handle = await openOwnFile(file);
  try {
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/** Open a file for reading, refusing a symbolic link as its last component. */
export async function openOwnFile(file: string): Promise<FileHandle> {
  try {
    return await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new SinkError(`refusing ${file}: it is a symbolic link`, { cause: error });
    }
    throw error;
  }
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Whether `file` exists and holds the text of `version` (a digest, see readVersioned). */
async function holdsVersion(file: string, version: string): Promise<boolean> {
  const current = await readOwnFile(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  return current !== undefined && digest(current) === version;
}

/** A lock older than this belongs to a process that died inside the (millisecond-long) critical section. */
const STALE_LOCK_MS = 30_000;

/** Run `action` holding an exclusive lock file beside `target` (hidden from listings like temp files). */
async function withLock<T>(target: string, action: () => Promise<T>): Promise<T> {
  const lock = path.join(path.dirname(target), `.${path.basename(target)}.lock${TEMP_MARKER}`);
  const token = `${process.pid}.${randomBytes(8).toString('hex')}`;
  const giveUpAt = Date.now() + 5_000;
  for (;;) {
    try {
      await writeFile(lock, token, { flag: 'wx', mode: FILE_MODE });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (await isStale(lock)) await breakStaleLock(lock);
      else if (Date.now() > giveUpAt) throw new Error(`${path.basename(target)} is locked by another writer`);
      else await sleep(5 + Math.random() * 20);
    }
  }
  try {
    return await action();
  } finally {
    // Only our own lock (a lock taken from us as stale is someone else's now).
    if ((await readFile(lock, 'utf8').catch(() => undefined)) === token) await unlink(lock).catch(() => undefined);
  }
}

async function isStale(file: string, staleMs = STALE_LOCK_MS): Promise<boolean> {
  const info = await stat(file).catch(() => undefined);
  return info !== undefined && Date.now() - info.mtimeMs > staleMs;
}

/**
 * Remove a stale lock, one waiter at a time: breaking is itself guarded by an exclusive "breaker" file, so that of
 * several waiters that saw the same stale lock only one removes it (and none removes the fresh lock another just
 * took); the breaker is held for microseconds and considered abandoned after a minute.
 */
async function breakStaleLock(lock: string): Promise<void> {
  const breaker = `${lock}breaker`;
  try {
    await writeFile(breaker, String(process.pid), { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    if (await isStale(breaker, 2 * STALE_LOCK_MS)) await unlink(breaker).catch(() => undefined);
    return;
  }
  try {
    if (await isStale(lock)) await unlink(lock).catch(() => undefined);
  } finally {
    await unlink(breaker).catch(() => undefined);
  }
}

function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}${TEMP_MARKER}${randomBytes(6).toString('hex')}`);
}

/** Flush a file's data to disk (so a crash after the rename never leaves a short file) and return its size. */
async function syncFile(file: string): Promise<number> {
  const handle = await open(file, 'r+');
  try {
    await handle.sync();
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}

/** Make a rename durable. Best effort: some file systems refuse to fsync a directory. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync().catch(() => undefined);
  } finally {
    await handle.close();
  }
}

/** A temp file not written to for this long belongs to a writer that was killed (a live one keeps writing). */
const ABANDONED_TEMP_MS = 10 * 60_000;

/**
 * A process killed mid-copy leaves its hidden temp file behind. The key is deterministic, so before writing it
 * again we remove the temp files of that key that nobody has written to for a while; a fresh one is a concurrent
 * writer of the same key, and both renames then land the same bytes.
 */
async function removeAbandonedTempFiles(target: string): Promise<void> {
  const prefix = `.${path.basename(target)}${TEMP_MARKER}`;
  const siblings = await readdir(path.dirname(target)).catch(() => [] as string[]);
  const abandonedBefore = Date.now() - ABANDONED_TEMP_MS;
  await Promise.all(
    siblings
      .filter((name) => name.startsWith(prefix))
      .map(async (name) => {
        const file = path.join(path.dirname(target), name);
        const info = await stat(file).catch(() => undefined);
        if (info && info.mtimeMs < abandonedBefore) await unlink(file).catch(() => undefined);
      }),
  );
}
