import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { tempDir } from '../temp.js';
import { LambdaContainer, privateTmpUnavailable } from './lambda-container.js';

const unavailable = privateTmpUnavailable();
if (unavailable && process.env.CI) throw new Error(`CI must give Lambda containers a private /tmp: ${unavailable}`);
if (unavailable) console.warn(`SKIPPED the private /tmp test: ${unavailable}`);

const containers: LambdaContainer[] = [];
afterEach(async () => {
  await Promise.all(containers.splice(0).map((container) => container.stop()));
});

// A handler that leaves a file in /tmp, lists /tmp, and tries to write next to its own code.
const HANDLER = `
import { readdirSync, writeFileSync } from 'node:fs';
export const handler = async (event, context) => {
  writeFileSync('/tmp/lsync-convert-' + context.functionName, 'scratch');
  let codeWritable = true;
  try { writeFileSync(new URL('./written', import.meta.url), 'x'); } catch { codeWritable = false; }
  return { tmp: readdirSync('/tmp').sort(), codeWritable };
};
`;

test.skipIf(unavailable !== undefined)(
  'each container has a /tmp of its own, with its code read-only, and writes nothing to the machine',
  async () => {
    const code = await tempDir('lsync-container-code-');
    await writeFile(path.join(code, 'index.mjs'), HANDLER);
    const start = (functionName: string) =>
      LambdaContainer.start({
        handlerFile: path.join(code, 'index.mjs'),
        exportName: 'handler',
        functionName,
        env: { PATH: '/usr/bin:/bin' },
        privateTmpMiB: 16,
      }).then((container) => {
        containers.push(container);
        return container;
      });
    const [a, b] = await Promise.all([start('a'), start('b')]);
    // The code directory (under /tmp here) is bound back in; nothing else of the machine's /tmp is there.
    const codeTop = path.relative('/tmp', code).split(path.sep)[0];
    expect(await a?.invoke(null, 10_000)).toEqual({ tmp: [codeTop, 'lsync-convert-a'], codeWritable: false });
    expect(await b?.invoke(null, 10_000)).toEqual({ tmp: [codeTop, 'lsync-convert-b'], codeWritable: false });
    expect(existsSync('/tmp/lsync-convert-a')).toBe(false);
    expect(existsSync(path.join(code, 'written'))).toBe(false);
  },
);
