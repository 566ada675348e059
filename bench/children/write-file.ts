/**
 * The local-write limit: copy a local file into a directory with streams and fsync it, the disk work a local
 * destination does. Usage: node write-file.mjs <source> <target>; prints {"bytes": n}.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

const [source, target] = process.argv.slice(2);
if (!source || !target) throw new Error('usage: write-file <source> <target>');
await pipeline(createReadStream(source), createWriteStream(target, { flags: 'wx' }));
const handle = await open(target, 'r+');
await handle.sync();
const { size } = await handle.stat();
await handle.close();
process.stdout.write(`${JSON.stringify({ bytes: size })}\n`);
