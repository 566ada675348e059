import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['test/support/capture-output.ts'],
    // console.* calls of the tests reach the main process: capture them for the leak scan too.
    onConsoleLog(log) {
      const dir = process.env.LSYNC_OUTPUT_CAPTURE;
      if (dir) appendFileSync(path.join(dir, 'console.log'), `${log}\n`);
    },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
