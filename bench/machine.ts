/** A short description of the machine the figures were measured on. */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO } from './services.js';

const run = promisify(execFile);

async function firstLine(command: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(command, args);
    // e.g. "rclone v1.60.1-DEV", "curl 7.88.1 (x86_64-pc-linux-gnu) ...": name and version only.
    return stdout.split('\n')[0]?.trim().split(/\s+/).slice(0, 2).join(' ') || 'unknown';
  } catch {
    return 'not installed';
  }
}

export async function describeMachine(): Promise<string[]> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  const mhz = /^cpu MHz\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim();
  const s3rver = JSON.parse(await readFile(path.join(REPO, 'node_modules/s3rver/package.json'), 'utf8')) as {
    version: string;
  };
  const fauxqs = JSON.parse(await readFile(path.join(REPO, 'node_modules/fauxqs/package.json'), 'utf8')) as {
    version: string;
  };
  return [
    `- CPU: ${model}${mhz ? ` (${Math.round(Number(mhz))} MHz)` : ''}, ${os.availableParallelism()} cores`,
    `- Memory: ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `- OS: ${os.type()} ${os.release()} (${os.arch()})`,
    `- Node.js: ${process.version}`,
    `- Peers and emulators: ${await firstLine('rclone', ['version'])}, s3rver ${s3rver.version}, fauxqs ${fauxqs.version}, ${await firstLine('curl', ['--version'])}`,
  ];
}
