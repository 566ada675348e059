import path from 'node:path';
import { Duration, Size, Validations } from 'aws-cdk-lib';
import type { ISecurityGroup, ISubnet, IVpc } from 'aws-cdk-lib/aws-ec2';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Architecture, type ILayerVersion, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import {
  type ICommandHooks,
  NodejsFunction,
  type NodejsFunctionProps,
  OutputFormat,
} from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/** Subnets of a VPC for the functions, and the security groups of their network interfaces. */
export interface FunctionNetwork {
  readonly vpc: IVpc;
  readonly subnets: readonly ISubnet[];
  readonly securityGroups: readonly ISecurityGroup[];
}

export interface SyncFunctionProps {
  /** Path of the handler module (TypeScript), relative to nothing: absolute. */
  readonly entry: string;
  readonly description: string;
  /** @default Duration.minutes(1) */
  readonly timeout?: Duration;
  /** @default 512 */
  readonly memorySize?: number;
  readonly environment?: Record<string, string>;
  /** @default RetentionDays.ONE_YEAR (AWS Control Tower's CT.CLOUDWATCH.PR.2 asks for at least a year) */
  readonly logRetention?: RetentionDays;
  /** Customer-managed key of the log group (its key policy must let CloudWatch Logs use it). @default CloudWatch Logs' own */
  readonly logEncryptionKey?: IKey;
  /** Run in these subnets of a VPC. @default no VPC (Lambda's own network) */
  readonly network?: FunctionNetwork;
  /** Options of `currentVersion`, for functions something invokes by version. @default CDK's */
  readonly currentVersionOptions?: NodejsFunctionProps['currentVersionOptions'];
  /** Packages left out of the bundle, loaded at run time from a layer (native code). @default none */
  readonly externalModules?: string[];
  /** @default none */
  readonly layers?: ILayerVersion[];
  /** /tmp size, MiB (512 to 10240). @default 512 */
  readonly ephemeralStorageMiB?: number;
  /**
   * Files copied into the bundle beside the handler: name in the bundle to absolute path at synth. They are part of
   * the code (its hash, hence the function's version), read from `LAMBDA_TASK_ROOT`. @default none
   */
  readonly bundledFiles?: Readonly<Record<string, string>>;
}

/**
 * The one place that knows how our Lambda functions are built: Node.js 22 on arm64, ESM bundled and minified by the
 * local esbuild (no Docker), source maps on, the AWS SDK bundled at the versions we test, one log group each.
 */
export class SyncFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: SyncFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention ?? RetentionDays.ONE_YEAR,
      encryptionKey: props.logEncryptionKey,
    });
    const settings: NodejsFunctionProps = {
      entry: props.entry,
      handler: 'handler',
      description: props.description,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.minutes(1),
      tracing: Tracing.ACTIVE,
      logGroup,
      currentVersionOptions: props.currentVersionOptions,
      layers: props.layers,
      ephemeralStorageSize: props.ephemeralStorageMiB ? Size.mebibytes(props.ephemeralStorageMiB) : undefined,
      vpc: props.network?.vpc,
      vpcSubnets: props.network ? { subnets: [...props.network.subnets] } : undefined,
      securityGroups: props.network ? [...props.network.securityGroups] : undefined,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: 'localytics-export-sync',
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        mainFields: ['module', 'main'],
        externalModules: props.externalModules ?? [],
        forceDockerBundling: false,
        commandHooks: props.bundledFiles ? new CopyIntoBundle(props.bundledFiles) : undefined,
        // Some bundled CommonJS dependencies call require(): give the ESM bundle one.
        banner: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
      },
    };
    super(scope, id, settings);
    Validations.of(this).acknowledge(
      {
        id: 'AwsSolutions-L1',
        reason:
          'nodejs22.x is the runtime we build and test for (esbuild target node22); newer runtimes are adopted deliberately.',
      },
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: 'AWSLambdaBasicExecutionRole only lets the function write its own CloudWatch logs.',
      },
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        reason:
          "AWSLambdaVPCAccessExecutionRole only lets Lambda manage the function's network interfaces in the subnets it is given.",
      },
    );
  }
}

/** Copies files into a bundle after esbuild (a shell step of CDK's local bundling). */
class CopyIntoBundle implements ICommandHooks {
  constructor(readonly files: Readonly<Record<string, string>>) {}

  beforeBundling(): string[] {
    return [];
  }

  beforeInstall(): string[] {
    return [];
  }

  afterBundling(_inputDir: string, outputDir: string): string[] {
    return Object.entries(this.files).map(
      ([name, source]) => `cp ${shellQuote(source)} ${shellQuote(path.join(outputDir, name))}`,
    );
  }
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}
