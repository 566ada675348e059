/**
 * Issue 21, item 5: the local sink stays inside `--dest`, and keeps what it writes to its owner.
 *
 * Before, keys were checked only as text (`path.resolve` under the destination): a symbolic link inside the
 * destination (a `_state` folder linked elsewhere) sent writes, reads and deletes outside it. Now the real path of
 * each parent folder is checked before every operation (no symbolic link between the destination and the file; the
 * destination itself may be one), and files are read without following a link in their last component.
 *
 * What no test here can show, argued instead: the check and the operation are two system calls, so a process that
 * can write inside the destination could swap a folder for a link between them (Node.js has no `openat` to pin the
 * folder). Such a process can already write any data or `_state` record it likes, so the check defends against a
 * link left in place (a mistake, or a planted link that outlives its author's access), which is what was
 * reproduced; the Security page says that `_state/` is trusted only as far as the folder's permissions go.
 */
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { LocalDirObjectReader } from '../../functions/adapters/object-readers.js';
import { SinkError } from '../../functions/core/errors.js';
import { tempDir } from '../support/temp.js';

/** A destination whose `linked` folder is a symbolic link to a folder outside it. */
async function destinationWithLink(linked: string) {
  const dest = await tempDir();
  const outside = await tempDir();
  await mkdir(path.dirname(path.join(dest, linked)), { recursive: true });
  await symlink(outside, path.join(dest, linked), 'dir');
  return { sink: new LocalDirSink(dest), dest, outside };
}

describe('a symbolic link inside the destination is never followed', () => {
  test('writeText into a linked _state folder is refused; nothing lands outside', async () => {
    const { sink, outside } = await destinationWithLink('_state');
    await expect(sink.writeText('_state/exports_seen.json', '{}')).rejects.toThrow(SinkError);
    await expect(sink.writeText('_state/exports_seen.json', '{}')).rejects.toThrow(/is a symbolic link/);
    expect(await readdir(outside)).toEqual([]);
  });

  test('createText and replaceText into a linked folder are refused', async () => {
    const { sink, outside } = await destinationWithLink('_state/profile_changes');
    await writeFile(path.join(outside, 'claim.json'), 'old');
    await expect(sink.createText('_state/profile_changes/new.json', 'x')).rejects.toThrow(/is a symbolic link/);
    await expect(sink.replaceText('_state/profile_changes/claim.json', 'new', 'any')).rejects.toThrow(
      /is a symbolic link/,
    );
    expect(await readdir(outside)).toEqual(['claim.json']);
    expect(await readFile(path.join(outside, 'claim.json'), 'utf8')).toBe('old');
  });

  test('a streamed data write under a linked folder deeper down is refused', async () => {
    const { sink, outside } = await destinationWithLink('raw/app=x');
    const body = Readable.from([Buffer.from('{"a":1}\n')]);
    await expect(
      sink.write('raw/app=x/dt=2026-01-01/00.json.gz', body, { contentType: 'application/gzip' }),
    ).rejects.toThrow(/is a symbolic link/);
    expect(await readdir(outside)).toEqual([]);
  });

  test('delete through a linked folder is refused and the file outside stays', async () => {
    const { sink, outside } = await destinationWithLink('_state');
    await writeFile(path.join(outside, 'victim.json'), 'keep me');
    await expect(sink.delete('_state/victim.json')).rejects.toThrow(/is a symbolic link/);
    expect(await readFile(path.join(outside, 'victim.json'), 'utf8')).toBe('keep me');
  });

  test('reading through a linked folder, or a file that is itself a link, is refused', async () => {
    const { sink, outside } = await destinationWithLink('_state');
    await writeFile(path.join(outside, 'record.json'), 'private');
    await expect(sink.readText('_state/record.json')).rejects.toThrow(/is a symbolic link/);
    const plain = new LocalDirSink(await tempDir());
    await plain.writeText('_state/a.json', '{}');
    await symlink(path.join(outside, 'record.json'), path.join(plain.location, '_state', 'b.json'));
    await expect(plain.readText('_state/b.json')).rejects.toThrow(/is a symbolic link/);
    await expect(plain.readVersioned('_state/b.json')).rejects.toThrow(/is a symbolic link/);
  });

  test('listing a linked folder is refused', async () => {
    const { sink, outside } = await destinationWithLink('_state');
    await writeFile(path.join(outside, 'elsewhere.json'), '{}');
    const list = async () => {
      const keys: string[] = [];
      for await (const object of sink.list('_state/')) keys.push(object.key);
      return keys;
    };
    await expect(list()).rejects.toThrow(/is a symbolic link/);
  });

  test('the Parquet converter reading the JSON layer does not follow a linked folder either', async () => {
    const { dest, outside } = await destinationWithLink('raw');
    await writeFile(path.join(outside, 'x.json'), 'private');
    await expect(new LocalDirObjectReader(dest).open('raw/x.json')).rejects.toThrow(/is a symbolic link/);
  });

  test('a destination that is itself a symbolic link is used as it is', async () => {
    const real = await tempDir();
    const link = path.join(await tempDir(), 'lake');
    await symlink(real, link, 'dir');
    const sink = new LocalDirSink(link);
    await sink.writeText('_state/a.json', '{}');
    expect(await sink.readText('_state/a.json')).toBe('{}');
    expect(await readdir(path.join(real, '_state'))).toEqual(['a.json']);
  });
});

describe('files are created readable by their owner only (0600): they hold presigned URLs and personal data', () => {
  const mode = async (file: string) => (await stat(file)).mode & 0o777;

  test('data objects, state records, created and replaced records', async () => {
    const sink = new LocalDirSink(await tempDir());
    await sink.write('audiences/a.json.gz', Readable.from([Buffer.from('x')]), { contentType: 'application/gzip' });
    await sink.writeText('_state/w.json', '{}');
    const version = await sink.createText('_state/c.json', '{}');
    await sink.replaceText('_state/c.json', '{"b":1}', version as string);
    for (const key of ['audiences/a.json.gz', '_state/w.json', '_state/c.json']) {
      expect(await mode(path.join(sink.location, key))).toBe(0o600);
    }
  });
});
