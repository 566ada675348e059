import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { readStackConfig } from '../../../lib/config.js';
import { LocalyticsExportSyncStack } from '../../../lib/localytics-export-sync-stack.js';
import { syntheticApps } from '../synthetic-apps.js';
import type { PolicyStatement } from './iam.js';

/** The secret the synthesized functions read (the tests store the simulator's credentials under it). */
export const E2E_SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:lsync-e2e-AbCdEf';
/** The imported bucket's name in the template; each test's bucket takes its place. */
export const E2E_BUCKET_PLACEHOLDER = 'lsync-e2e-bucket-placeholder';
export const E2E_KEY_PREFIX = 'lake';
/** The imported bucket's customer-managed key: the functions' KMS grants are checked against their S3 calls. */
export const E2E_BUCKET_KEY_ARN = 'arn:aws:kms:us-east-1:123456789012:key/0e2e0e2e-1111-2222-3333-444455556666';
/** The other key option (a shared budget table's key), for the KMS comparison: not part of the running deployment. */
export const E2E_BUDGET_TABLE_KEY_ARN = 'arn:aws:kms:us-east-1:123456789012:key/0e2e0e2e-7777-8888-9999-aaaabbbbcccc';
export const E2E_SHARED_BUDGET_TABLE = 'arn:aws:dynamodb:us-east-1:123456789012:table/lsync-e2e-shared-budget';

export type FunctionName = 'planner' | 'copier' | 'converter';

export interface SynthesizedFunction {
  readonly logicalId: string;
  /** The bundled handler `cdk synth` wrote: `<asset dir>/index.mjs`. */
  readonly handlerFile: string;
  readonly exportName: string;
  readonly runtime: string;
  readonly timeoutSeconds: number;
  readonly memorySize: number;
  /** /tmp, MiB. */
  readonly ephemeralStorageMiB: number;
  readonly architecture: 'x86_64' | 'arm64';
  /** The asset directories of its layers (each holds `nodejs/node_modules`, which Lambda puts on NODE_PATH). */
  readonly layerDirs: readonly string[];
  /** Environment variables as in the template (intrinsics unresolved). */
  readonly environment: Readonly<Record<string, unknown>>;
  /** Every statement of the policies attached to the function's role (intrinsics unresolved). */
  readonly statements: readonly PolicyStatement[];
}

export interface SynthesizedDeployment {
  readonly dir: string;
  readonly functions: Readonly<Record<FunctionName, SynthesizedFunction>>;
  /** Logical IDs of the resources a test maps to emulator resources. */
  readonly logicalIds: {
    readonly queue: string;
    readonly deadLetterQueue: string;
    readonly convertQueue: string;
    readonly convertDeadLetterQueue: string;
    /** None when the budget table is imported. */
    readonly budgetTable?: string;
    readonly ledgerTable: string;
  };
}

/** The test deployment's apps: more than Lambda's environment could hold (4 KB took about 50), bundled as a file. */
export const E2E_APPS: readonly string[] = syntheticApps(60);

/** The context of the test deployment: its apps (a simulator serves them), an imported bucket, a secret by ARN. */
export const E2E_CONTEXT = {
  secretName: E2E_SECRET_ARN,
  bucketName: E2E_BUCKET_PLACEHOLDER,
  keyPrefix: E2E_KEY_PREFIX,
  apps: [...E2E_APPS],
  bucketKmsKeyArn: E2E_BUCKET_KEY_ARN,
  'aws:cdk:enable-asset-metadata': true,
  'aws:cdk:enable-path-metadata': true,
};

/** `cdk synth` of the real stack into `outdir` (the CDK app's own code path, bundling included, without cdk-nag). */
export async function synthesizeDeployment(
  outdir: string,
  context: Record<string, unknown> = {},
): Promise<SynthesizedDeployment> {
  await mkdir(outdir, { recursive: true });
  const app = new App({ outdir, context: { ...E2E_CONTEXT, ...context } });
  new LocalyticsExportSyncStack(app, 'LsyncE2E', { config: readStackConfig(app.node) });
  app.synth();
  await writeFile(path.join(outdir, 'e2e-ready'), 'LsyncE2E.template.json');
  return loadDeployment(outdir);
}

type Resource = {
  Type: string;
  Properties: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
};

export function loadDeployment(dir: string): SynthesizedDeployment {
  const template = JSON.parse(readFileSync(path.join(dir, 'LsyncE2E.template.json'), 'utf8')) as {
    Resources: Record<string, Resource>;
  };
  const resources = Object.entries(template.Resources);
  const find = (type: string, suffix: string): [string, Resource] | undefined =>
    resources.find(
      ([, resource]) => resource.Type === type && String(resource.Metadata?.['aws:cdk:path'] ?? '').endsWith(suffix),
    );
  const byPath = (type: string, suffix: string): [string, Resource] => {
    const found = find(type, suffix);
    if (!found) throw new Error(`the template has no ${type} at */${suffix}`);
    return found;
  };
  const assetDir = (logicalId: string, resource: Resource): string => {
    const assetPath = resource.Metadata?.['aws:asset:path'];
    if (typeof assetPath !== 'string') throw new Error(`${logicalId} has no asset path (asset metadata off?)`);
    return path.join(dir, assetPath);
  };
  const fn = (name: string): SynthesizedFunction => {
    const [logicalId, resource] = byPath('AWS::Lambda::Function', `/${name}/Resource`);
    const [file, exportName] = String(resource.Properties.Handler).split('.') as [string, string];
    const layers = ((resource.Properties.Layers ?? []) as { Ref: string }[]).map(({ Ref }) => {
      const layer = resources.find(([id]) => id === Ref);
      if (!layer) throw new Error(`${logicalId} uses layer ${Ref}, which is not in the template`);
      return assetDir(...layer);
    });
    const architectures = (resource.Properties.Architectures ?? ['x86_64']) as ['x86_64' | 'arm64'];
    const role = (resource.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const statements = resources
      .filter(
        ([, policy]) =>
          policy.Type === 'AWS::IAM::Policy' &&
          (policy.Properties.Roles as { Ref?: string }[]).some((ref) => ref.Ref === role),
      )
      .flatMap(([, policy]) => (policy.Properties.PolicyDocument as { Statement: PolicyStatement[] }).Statement);
    return {
      logicalId,
      handlerFile: path.join(assetDir(logicalId, resource), `${file}.mjs`),
      exportName,
      runtime: String(resource.Properties.Runtime),
      timeoutSeconds: Number(resource.Properties.Timeout),
      memorySize: Number(resource.Properties.MemorySize),
      ephemeralStorageMiB: Number((resource.Properties.EphemeralStorage as { Size?: number })?.Size ?? 512),
      architecture: architectures[0],
      layerDirs: layers,
      environment: (resource.Properties.Environment as { Variables: Record<string, unknown> }).Variables,
      statements,
    };
  };
  return {
    dir,
    functions: { planner: fn('Planner'), copier: fn('Copier'), converter: fn('Parquet/Function') },
    logicalIds: {
      queue: byPath('AWS::SQS::Queue', '/Jobs/Queue/Resource')[0],
      deadLetterQueue: byPath('AWS::SQS::Queue', '/Jobs/DeadLetterQueue/Resource')[0],
      convertQueue: byPath('AWS::SQS::Queue', '/Parquet/Queues/Queue/Resource')[0],
      convertDeadLetterQueue: byPath('AWS::SQS::Queue', '/Parquet/Queues/DeadLetterQueue/Resource')[0],
      budgetTable: find('AWS::DynamoDB::Table', '/RequestBudget/Table/Resource')?.[0],
      ledgerTable: byPath('AWS::DynamoDB::Table', '/JobLedger/Table/Resource')[0],
    },
  };
}

/**
 * The deployment synthesized once per test run into `dir` (given by the global setup, removed at teardown): the
 * first worker that asks synthesizes it, the others wait for it.
 */
export async function synthesizeOnce(dir: string, timeoutMs = 240_000): Promise<SynthesizedDeployment> {
  const ready = path.join(dir, 'out', 'e2e-ready');
  const failed = path.join(dir, 'failed');
  if (existsSync(ready)) return loadDeployment(path.join(dir, 'out'));
  try {
    await mkdir(path.join(dir, 'lock'));
  } catch {
    const end = Date.now() + timeoutMs;
    while (!existsSync(ready)) {
      if (existsSync(failed))
        throw new Error(`the test deployment failed to synthesize: ${await readFile(failed, 'utf8')}`);
      if (Date.now() > end) throw new Error('timed out waiting for another worker to synthesize the test deployment');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return loadDeployment(path.join(dir, 'out'));
  }
  try {
    return await synthesizeDeployment(path.join(dir, 'out'));
  } catch (error) {
    await writeFile(failed, String((error as Error).stack ?? error));
    throw error;
  }
}
