import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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

/**
 * Where each asset of a synthesized stack is on disk, by the S3 key its code is uploaded to (`Code.S3Key` of a
 * function, `Content.S3Key` of a layer): the directory `cdk deploy` zips, from the stack's asset manifest.
 */
export function assetDirectories(outdir: string, stackName: string): ReadonlyMap<string, string> {
  const manifest = JSON.parse(readFileSync(path.join(outdir, `${stackName}.assets.json`), 'utf8')) as {
    files: Record<string, { source: { path: string }; destinations: Record<string, { objectKey: string }> }>;
  };
  return new Map(
    Object.values(manifest.files).flatMap((file) =>
      Object.values(file.destinations).map(
        (destination) => [destination.objectKey, path.join(outdir, file.source.path)] as const,
      ),
    ),
  );
}

afterAll(() => {
  for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
