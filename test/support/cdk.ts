import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App, type AppProps } from 'aws-cdk-lib';
import { afterAll } from 'vitest';

const outdirs: string[] = [];

/**
 * A CDK app that synthesizes into its own temporary folder, removed after the file's tests (a plain `new App()`
 * leaves a `cdk.out*` folder with the bundled assets in the temp directory for every synth).
 */
export function testApp(props: AppProps = {}): App {
  const outdir = mkdtempSync(path.join(os.tmpdir(), 'lsync-cdk-'));
  outdirs.push(outdir);
  return new App({ ...props, outdir });
}

afterAll(() => {
  for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
