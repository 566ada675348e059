import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArnFormat, CfnResource, Duration, RemovalPolicy, Stack, Stage, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { type ISecurityGroup, type ISubnet, type IVpc, Peer, Port, SecurityGroup } from 'aws-cdk-lib/aws-ec2';
import { AnyPrincipal, Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { type IKey, Key } from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type CfnBucket,
  type IBucket,
  ObjectOwnership,
} from 'aws-cdk-lib/aws-s3';
import type { ScheduleExpression } from 'aws-cdk-lib/aws-scheduler';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { InvocationType, Trigger } from 'aws-cdk-lib/triggers';
import { Construct } from 'constructs';
import { apiUrlProblem } from '../functions/adapters/api-url.js';
import { EXPORTS_SEEN_KEY } from '../functions/core/export-watch.js';
import { DATASETS, type Dataset, parseAppUuid } from '../functions/core/identifiers.js';
import { CHANGE_SET_STATE_PREFIX, DATASET_FOLDERS } from '../functions/core/jobs.js';
import type { TableDefinition } from '../functions/core/tables.js';
import { APP_LIST_FILE, formatAppList } from '../functions/handlers/config.js';
import { AnalyticsViews } from './analytics-views.js';
import { Catalog } from './catalog.js';
import { suppressControlTowerRules } from './control-tower.js';
import { createOnlyPutStatements } from './create-only-writes.js';
import { ExportQueue } from './export-queue.js';
import { JobLedgerTable } from './job-ledger-table.js';
import { grantKeyUseVia } from './kms-grants.js';
import { Monitoring } from './monitoring.js';
import { acknowledgeExpectedWildcards } from './nag-acknowledgements.js';
import { ParquetConverter } from './parquet-converter.js';
import { RequestBudgetTable } from './request-budget-table.js';
import { type FunctionNetwork, SyncFunction } from './sync-function.js';
import { SyncSchedules } from './sync-schedules.js';

/** Subnets of a VPC for the functions (AWS Control Tower's CT.LAMBDA.PR.3). */
export interface NetworkProps {
  readonly vpc: IVpc;
  /** Private subnets that reach the AWS services and the Localytics API (README, "Control Tower"). */
  readonly subnets: readonly ISubnet[];
  /** @default one security group that allows only HTTPS (443) out */
  readonly securityGroups?: readonly ISecurityGroup[];
}

export interface LocalyticsExportSyncProps {
  /**
   * The customer's bucket. @default a new bucket: SSE-KMS, TLS only, private, versioned with Object Lock (no default
   * retention), access-logged to a bucket of its own, EventBridge notifications on, retained on delete
   */
  readonly bucket?: IBucket;
  /** The customer-managed KMS key of `bucket`, if it uses one: the functions get just the grants they need. */
  readonly bucketKey?: IKey;
  /** Key prefix every object is written under. @default 'localytics' */
  readonly keyPrefix?: string;
  /** Secrets Manager secret holding `{"apiKey": "...", "apiSecret": "..."}`. */
  readonly secret: ISecret;
  /**
   * Localytics app IDs whose raw logs are copied (any number; case and repeats do not matter). They are bundled with
   * the planner's code, so a changed list re-plans at once after `cdk deploy` (the deployment trigger).
   */
  readonly apps: readonly string[];
  /** @default all: logs, audiences, profiles */
  readonly datasets?: readonly Dataset[];
  /** @default 'https://api.localytics.com' */
  readonly apiUrl?: string;
  /** API requests per minute for the key (a whole number), shared by every function of the deployment. @default 50 */
  readonly requestsPerMinute?: number;
  /**
   * The request budget table of another deployment with the same API key, to share its budget.
   * @default a new table
   */
  readonly budgetTable?: ITable;
  /** The customer-managed KMS key of `budgetTable`, if it uses one: the functions may use it through DynamoDB. */
  readonly budgetTableKey?: IKey;
  /**
   * Copier invocations at once (SQS event source maximum concurrency, 2 to 1000): throughput only, the request
   * budget is shared whatever the number. @default 2
   */
  readonly copierConcurrency?: number;
  /** @default Duration.minutes(5) */
  readonly copierTimeout?: Duration;
  /** @default 1024 */
  readonly copierMemorySize?: number;
  /** Messages per copier invocation. @default 5 */
  readonly batchSize?: number;
  /** Deliveries before a failing job is parked in the dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
  /** Hours after an hour ends before its log file is expected. @default 1 */
  readonly logLagHours?: number;
  /** How far back the hourly planning looks for missing hours. @default 6 */
  readonly lookbackHours?: number;
  /** How far back the daily planning (and the one after each deployment) looks for log gaps (at most 30). @default 30 */
  readonly backfillDays?: number;
  /** Minutes of work at `requestsPerMinute` the planner keeps in the queue (5 to 120). @default 30 */
  readonly queueAheadMinutes?: number;
  /** A log hour still 404 this long after it ended is parked as a gap. @default 24 */
  readonly notReadyDeadlineHours?: number;
  /** Alarm when an audience or profile export has not been regenerated for this long, or left its list. @default 48 */
  readonly staleExportHours?: number;
  /** @default minute 20 of every hour, UTC */
  readonly logSchedule?: ScheduleExpression;
  /** @default 09:30 America/New_York (after Localytics' daily refresh, DST-aware) */
  readonly exportsSchedule?: ScheduleExpression;
  /** Glue database holding the tables. @default 'localytics' */
  readonly catalogDatabaseName?: string;
  /** First date the tables' date projections cover (yyyy-MM-dd). @default '2020-01-01' */
  readonly catalogStartDate?: string;
  /** Alarm when an app's newest copied log hour is older than this. @default 6 */
  readonly lagAlarmHours?: number;
  /** Subscribe this address to the alarms. @default no notification topic */
  readonly alarmEmail?: string;
  /** A typed Parquet copy of every file (`<keyPrefix>/parquet/`), its converter and `<table>_parquet` tables. @default true */
  readonly parquet?: boolean;
  /** Memory of the Parquet converter, MiB. @default 1024 */
  readonly converterMemorySize?: number;
  /** Run the functions, and CDK's deployment trigger, in subnets of a VPC. @default Lambda's own network */
  readonly network?: NetworkProps;
}

/** The data folders each dataset writes. */
const DATASET_FOLDER_OF: Record<Dataset, readonly string[]> = {
  logs: [DATASET_FOLDERS.log_hour],
  audiences: [DATASET_FOLDERS.audience],
  profiles: [DATASET_FOLDERS.profile, DATASET_FOLDERS.profile_changes],
};

/** Safe key characters, without `*` and `?`: the prefix becomes part of IAM resource ARNs, where they are wildcards. */
const PREFIX = /^[A-Za-z0-9!_.'()-]+(\/[A-Za-z0-9!_.'()-]+)*$/;

/**
 * Localytics exports into the customer's S3 bucket: scheduled planning, an SQS fan-out of one job per file, copiers
 * that stream each file to its partitioned key, a dead-letter queue for what cannot be done, and IAM scoped to the
 * key prefix.
 */
export class LocalyticsExportSync extends Construct {
  readonly bucket: IBucket;
  /** Where the created bucket's server access logs go (none for an imported bucket). */
  readonly accessLogsBucket?: Bucket;
  /** The deployment's own key (rotated yearly): encrypts the functions' log groups. */
  readonly key: Key;
  /** The functions' subnets and security groups, when they run in a VPC. */
  readonly network?: FunctionNetwork;
  readonly keyPrefix: string;
  readonly planner: SyncFunction;
  readonly copier: SyncFunction;
  readonly jobs: ExportQueue;
  readonly budget: RequestBudgetTable;
  /** Which jobs wait in `jobs` right now, so that no planner run sends one twice. */
  readonly ledger: JobLedgerTable;
  readonly schedules: SyncSchedules;
  /** Plans right after a deployment that creates or changes the planner: the backfill starts at once. */
  readonly initialPlanning: Trigger;
  readonly catalog: Catalog;
  /** Athena views (fact_events, fact_sessions, ...) over the catalog's tables, and saved queries on them. */
  readonly analytics: AnalyticsViews;
  readonly monitoring: Monitoring;
  /** The Parquet layer's converter, unless `parquet` is false. */
  readonly converter?: ParquetConverter;

  constructor(scope: Construct, id: string, props: LocalyticsExportSyncProps) {
    super(scope, id);
    const settings = validate(props);
    this.keyPrefix = settings.keyPrefix;
    this.key = this.createKey();
    this.network = props.network && this.functionNetwork(props.network);
    if (props.bucket) {
      this.bucket = props.bucket;
    } else {
      this.accessLogsBucket = this.createAccessLogsBucket();
      this.bucket = this.createBucket(this.accessLogsBucket);
    }
    const placement = { logEncryptionKey: this.key, network: this.network };

    const copierTimeout = props.copierTimeout ?? Duration.minutes(5);
    this.jobs = new ExportQueue(this, 'Jobs', {
      visibilityTimeout: Duration.seconds(copierTimeout.toSeconds() * 6),
      maxReceiveCount: props.maxReceiveCount,
    });
    this.ledger = new JobLedgerTable(this, 'JobLedger');

    const environment: Record<string, string> = {
      DEST_BUCKET: this.bucket.bucketName,
      DEST_PREFIX: settings.keyPrefix,
      SECRET_ID: props.secret.secretArn,
      API_URL: props.apiUrl ?? 'https://api.localytics.com',
      DATASETS: settings.datasets.join(','),
      RATE_PER_MINUTE: String(settings.requestsPerMinute),
      QUEUE_URL: this.jobs.queue.queueUrl,
      DLQ_URL: this.jobs.deadLetterQueue.queueUrl,
      MAX_RECEIVE_COUNT: String(this.jobs.maxReceiveCount),
      LOG_LAG_HOURS: String(props.logLagHours ?? 1),
      LOOKBACK_HOURS: String(props.lookbackHours ?? 6),
      BACKFILL_DAYS: String(props.backfillDays ?? 30),
      LEDGER_TABLE: this.ledger.tableName,
      QUEUE_AHEAD_MINUTES: String(settings.queueAheadMinutes),
      NOT_READY_DEADLINE_HOURS: String(props.notReadyDeadlineHours ?? 24),
      STALE_EXPORT_HOURS: String(props.staleExportHours ?? 48),
    };

    this.planner = new SyncFunction(this, 'Planner', {
      entry: handlerPath('planner'),
      description: 'Plans Localytics export files to copy and enqueues one job per file',
      timeout: Duration.minutes(5),
      // The app list travels in the planner's code, not its environment (4 KB in all): any number of apps fits, its
      // role needs nothing more to read it, and a changed list is a changed code hash, which the trigger re-plans on.
      bundledFiles: { [APP_LIST_FILE]: this.writeAppList(settings.apps) },
      environment: {
        ...environment,
        APPS_FILE: APP_LIST_FILE,
        LAG_ALARM_HOURS: String(props.lagAlarmHours ?? 6),
      },
      // The trigger below invokes the current version; older versions serve nothing and go.
      currentVersionOptions: { removalPolicy: RemovalPolicy.DESTROY },
      ...placement,
    });
    this.copier = new SyncFunction(this, 'Copier', {
      entry: handlerPath('copier'),
      description: 'Copies one Localytics export file per job into S3',
      timeout: copierTimeout,
      memorySize: props.copierMemorySize ?? 1024,
      environment,
      ...placement,
    });
    this.copier.addEventSource(
      new SqsEventSource(this.jobs.queue, {
        batchSize: settings.batchSize,
        reportBatchItemFailures: true,
        maxConcurrency: settings.copierConcurrency,
      }),
    );

    this.budget = new RequestBudgetTable(this, 'RequestBudget', {
      existingTable: props.budgetTable,
      existingTableKey: props.budgetTableKey,
    });
    this.budget.bind(this.planner);
    this.budget.bind(this.copier);
    this.grantAccess(props, settings.datasets);
    this.schedules = new SyncSchedules(this, 'Schedules', {
      planner: this.planner,
      logSchedule: props.logSchedule,
      exportsSchedule: props.exportsSchedule,
    });
    // After the deployment, not 24 hours later: the daily task (backfill included), asynchronously so that neither
    // the API nor the key's budget can fail or slow the deployment. A failed run is retried twice by Lambda, alarms
    // (planner errors), and is covered by the next daily run. Re-planning is harmless (the ledger sends nothing
    // twice), so it also runs when the planner's code or settings change: added apps start their backfill at once.
    this.initialPlanning = new Trigger(this, 'InitialPlanning', {
      handler: this.planner,
      invocationType: InvocationType.EVENT,
      executeOnHandlerChange: true,
      executeAfter: [this.jobs, this.ledger, this.planner, this.copier],
    });
    if (this.network) placeTriggerProvider(Stack.of(this), this.network);
    const tables: TableDefinition['name'][] = [];
    if (settings.datasets.includes('logs')) tables.push('raw_logs');
    if (settings.datasets.includes('audiences')) tables.push('audiences');
    if (settings.datasets.includes('profiles')) tables.push('profiles', 'profile_changes');
    this.catalog = new Catalog(this, 'Catalog', {
      bucket: this.bucket,
      keyPrefix: settings.keyPrefix,
      apps: settings.apps,
      databaseName: props.catalogDatabaseName,
      startDate: props.catalogStartDate,
      tables,
      parquet: props.parquet ?? true,
    });
    this.analytics = new AnalyticsViews(this, 'Analytics', { catalog: this.catalog, parquet: props.parquet ?? true });
    this.monitoring = new Monitoring(this, 'Monitoring', {
      planner: this.planner,
      plannerLogs: this.planner.logGroup,
      copier: this.copier,
      queue: this.jobs.queue,
      deadLetterQueue: this.jobs.deadLetterQueue,
      watchesLogs: settings.datasets.includes('logs'),
      lagAlarmHours: props.lagAlarmHours,
      watchesExports: settings.datasets.includes('audiences') || settings.datasets.includes('profiles'),
      staleExportHours: props.staleExportHours ?? 48,
      alarmEmail: props.alarmEmail,
    });
    if (props.parquet ?? true) {
      this.converter = new ParquetConverter(this, 'Parquet', {
        bucket: this.bucket,
        bucketKey: props.bucketKey,
        keyPrefix: settings.keyPrefix,
        memorySize: props.converterMemorySize,
        maxReceiveCount: props.maxReceiveCount,
        monitoring: this.monitoring,
        ...placement,
      });
      this.converter.bindCopier(this.copier);
    }
  }

  private grantAccess(props: LocalyticsExportSyncProps, datasets: readonly Dataset[]): void {
    const under = (path: string) => this.bucket.arnForObjects(`${this.keyPrefix}/${path}`);
    const listUnderPrefix = new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['s3:ListBucket'],
      resources: [this.bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${this.keyPrefix}/*`] } },
    });
    const changeSetRecords = under(`${CHANGE_SET_STATE_PREFIX}*`);
    // Planner: list under the prefix (existence checks are prefix listings: see S3Sink.exists), read and write what
    // the daily run remembers of the export lists, and remove the record of a change set a copier copied but was
    // stopped before removing (it would otherwise show as awaiting copy forever). It reads no data object.
    this.planner.addToRolePolicy(listUnderPrefix);
    this.planner.addToRolePolicy(
      new PolicyStatement({ actions: ['s3:GetObject', 's3:PutObject'], resources: [under(EXPORTS_SEEN_KEY)] }),
    );
    this.planner.addToRolePolicy(new PolicyStatement({ actions: ['s3:DeleteObject'], resources: [changeSetRecords] }));
    // Copier: list under the prefix; read and write its state records (change-set claims, lost markers) and delete
    // a change-set record it holds (a conditional delete, If-Match, also needs s3:GetObject); create data objects in
    // its datasets' folders, never replace one (If-None-Match); abort its own uploads there.
    const dataFolders = [...new Set(datasets.flatMap((dataset) => DATASET_FOLDER_OF[dataset]))].map((folder) =>
      under(`${folder}/*`),
    );
    this.copier.addToRolePolicy(listUnderPrefix);
    // To find and abort the upload a copier killed mid-copy left open. It cannot be narrowed: the action is on the
    // bucket and S3 offers no prefix condition for it (it lists upload keys and ids only, no data).
    this.copier.addToRolePolicy(
      new PolicyStatement({ actions: ['s3:ListBucketMultipartUploads'], resources: [this.bucket.bucketArn] }),
    );
    this.copier.addToRolePolicy(
      new PolicyStatement({ actions: ['s3:GetObject', 's3:PutObject'], resources: [under('_state/*')] }),
    );
    this.copier.addToRolePolicy(new PolicyStatement({ actions: ['s3:DeleteObject'], resources: [changeSetRecords] }));
    for (const statement of createOnlyPutStatements(dataFolders)) this.copier.addToRolePolicy(statement);
    this.copier.addToRolePolicy(new PolicyStatement({ actions: ['s3:AbortMultipartUpload'], resources: dataFolders }));
    const prefix = this.keyPrefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    // The scheduler's invoke role is created at stack level by the schedule target, hence the stack scope.
    acknowledgeExpectedWildcards(Stack.of(this), [
      {
        finding: new RegExp(
          `^Resource::.*/${prefix}/(_state/(profile_changes/)?|(${Object.values(DATASET_FOLDERS).join('|')})/)\\*$`,
        ),
        reason: `Object permissions are scoped to the key prefix "${this.keyPrefix}/" (object ARNs under a prefix end in *).`,
      },
      { finding: /^Resource::\*$/, reason: 'X-Ray PutTraceSegments/PutTelemetryRecords support no resource scoping.' },
      {
        finding: /^Resource::<.*Planner.*\.Arn>:\*$/,
        reason: 'EventBridge Scheduler may invoke any version of the planner function (CDK default grant).',
      },
    ]);
    if (props.bucketKey) {
      // Both read (_state, GetObject: Decrypt) and write (PutObject: GenerateDataKey; the copier's multipart uploads
      // also Decrypt, for each part).
      for (const fn of [this.planner, this.copier]) {
        grantKeyUseVia(props.bucketKey, fn, 's3', ['kms:Decrypt', 'kms:GenerateDataKey']);
      }
    }
    props.secret.grantRead(this.planner);
    props.secret.grantRead(this.copier);
    // The ledger: the planner reads it whole, claims and releases; the copier keeps, parks and releases.
    this.planner.addToRolePolicy(
      new PolicyStatement({
        actions: ['dynamodb:Scan', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
        resources: [this.ledger.table.tableArn],
      }),
    );
    this.copier.addToRolePolicy(
      new PolicyStatement({
        actions: ['dynamodb:PutItem', 'dynamodb:DeleteItem'],
        resources: [this.ledger.table.tableArn],
      }),
    );
    this.jobs.queue.grantSendMessages(this.planner);
    this.jobs.queue.grantSendMessages(this.copier);
    this.jobs.deadLetterQueue.grantSendMessages(this.copier);
  }

  /** The planner's app list, written at synth into the cloud assembly (named by its content) for its bundle. */
  private writeAppList(apps: readonly string[]): string {
    const content = formatAppList(apps);
    const outdir = Stage.of(this)?.outdir;
    if (!outdir) throw new Error('LocalyticsExportSync must be created inside a CDK App');
    const file = path.join(outdir, `apps-${createHash('sha256').update(content).digest('hex').slice(0, 16)}.json`);
    writeFileSync(file, content);
    return file;
  }

  /**
   * The deployment's customer-managed key, for what needs one: CloudWatch Logs encrypts the functions' log groups
   * with it (CT.CLOUDWATCH.PR.3). Retained with the log groups when the stack goes, so that they stay readable.
   */
  private createKey(): Key {
    const stack = Stack.of(this);
    const key = new Key(this, 'Key', {
      description: 'Localytics Export Sync: encrypts the log groups of its functions',
      enableKeyRotation: true,
    });
    key.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: {
          ArnLike: {
            'kms:EncryptionContext:aws:logs:arn': stack.formatArn({
              service: 'logs',
              resource: 'log-group',
              resourceName: '*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );
    // Grants only for AWS resources or services (CT.KMS.PR.3): nobody can hand the key to another principal.
    key.addToResourcePolicy(
      new PolicyStatement({
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['kms:CreateGrant'],
        resources: ['*'],
        conditions: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' } },
      }),
    );
    return key;
  }

  private functionNetwork(network: NetworkProps): FunctionNetwork {
    if (network.subnets.length === 0) throw new Error('network.subnets must list at least one subnet');
    let securityGroups = network.securityGroups ?? [];
    if (securityGroups.length === 0) {
      const group = new SecurityGroup(this, 'FunctionsSecurityGroup', {
        vpc: network.vpc,
        description: 'Localytics Export Sync functions: HTTPS out only (AWS APIs, the Localytics API, its file hosts)',
        allowAllOutbound: false,
      });
      group.addEgressRule(Peer.anyIpv4(), Port.tcp(443), 'HTTPS to AWS APIs, the Localytics API and its file hosts');
      securityGroups = [group];
    }
    return { vpc: network.vpc, subnets: network.subnets, securityGroups };
  }

  /**
   * The bucket created when none is given, meeting AWS Control Tower's S3 controls: SSE-KMS with the AWS managed key
   * (anyone in the account allowed to read the objects can, as with SSE-S3; S3 Bucket Keys keep KMS calls few),
   * versioning with Object Lock but no default retention (nothing is locked, so the copier's deletes of its `_state/`
   * records and the lifecycle rules work as before), server access logs, EventBridge notifications.
   */
  private createBucket(accessLogs: Bucket): Bucket {
    const bucket = new Bucket(this, 'Bucket', {
      encryption: BucketEncryption.KMS_MANAGED,
      bucketKeyEnabled: true,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      objectLockEnabled: true,
      lifecycleRules: [
        { abortIncompleteMultipartUploadAfter: Duration.days(1) },
        {
          // _state records hold presigned URLs while a change set is copied; their old versions must not linger.
          prefix: `${this.keyPrefix}/_state/`,
          noncurrentVersionExpiration: Duration.days(1),
          expiredObjectDeleteMarker: true,
        },
      ],
    });
    const cfn = bucket.node.defaultChild as CfnBucket;
    // Server access logs through the log bucket's policy (no ACLs), whatever CDK feature flags the app sets.
    cfn.loggingConfiguration = { destinationBucketName: accessLogs.bucketName, logFilePrefix: `${this.keyPrefix}/` };
    accessLogs.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('logging.s3.amazonaws.com')],
        actions: ['s3:PutObject'],
        resources: [accessLogs.arnForObjects(`${this.keyPrefix}/*`)],
        conditions: {
          ArnLike: { 'aws:SourceArn': bucket.bucketArn },
          StringEquals: { 'aws:SourceAccount': Stack.of(this).account },
        },
      }),
    );
    enableEventBridgeNotifications(bucket);
    return bucket;
  }

  /** Where the created bucket's server access logs go, for a year; retained when the stack goes, like the bucket. */
  private createAccessLogsBucket(): Bucket {
    const accessLogs = new Bucket(this, 'AccessLogsBucket', {
      // S3 delivers server access logs only to buckets with SSE-S3 default encryption.
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      lifecycleRules: [
        { expiration: Duration.days(365), noncurrentVersionExpiration: Duration.days(1) },
        { expiredObjectDeleteMarker: true },
      ],
    });
    enableEventBridgeNotifications(accessLogs);
    Validations.of(accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the server access log bucket: logging the deliveries of logs into it would never end.',
    });
    suppressControlTowerRules(accessLogs.node.defaultChild as CfnResource, [
      {
        rule: 's3_bucket_default_encryption_kms_check',
        reason: 'S3 delivers server access logs only to buckets whose default encryption is SSE-S3 (AES256).',
      },
      {
        rule: 's3_bucket_logging_enabled_check',
        reason: 'This is the server access log bucket: logging the deliveries of logs into it would never end.',
      },
      {
        rule: 's3_bucket_object_lock_enabled_check',
        reason: 'S3 cannot deliver server access logs to a bucket with Object Lock.',
      },
    ]);
    return accessLogs;
  }
}

/**
 * S3 events to EventBridge (CT.S3.PR.4), set on the bucket itself: CDK's `eventBridgeEnabled` would add a
 * custom-resource function for it. Nothing receives them unless someone adds a rule.
 */
function enableEventBridgeNotifications(bucket: Bucket): void {
  (bucket.node.defaultChild as CfnBucket).notificationConfiguration = {
    eventBridgeConfiguration: { eventBridgeEnabled: true },
  };
}

/**
 * CDK's trigger provider (one function per stack, which invokes the planner during a deployment) in the functions'
 * subnets too: CDK offers no setting for it, so its resources are amended here.
 */
function placeTriggerProvider(stack: Stack, network: FunctionNetwork): void {
  const provider = stack.node.tryFindChild('AWSCDK.TriggerCustomResourceProviderCustomResourceProvider');
  const handler = provider?.node.tryFindChild('Handler');
  const role = provider?.node.tryFindChild('Role');
  if (!(handler instanceof CfnResource) || !(role instanceof CfnResource)) {
    throw new Error("CDK's trigger provider is not where this construct expects it: it cannot be put in the VPC");
  }
  handler.addPropertyOverride('VpcConfig', {
    SubnetIds: network.subnets.map((subnet) => subnet.subnetId),
    SecurityGroupIds: network.securityGroups.map((group) => group.securityGroupId),
  });
  role.addPropertyOverride(
    'ManagedPolicyArns',
    ['AWSLambdaBasicExecutionRole', 'AWSLambdaVPCAccessExecutionRole'].map((name) => ({
      'Fn::Sub': `arn:\${AWS::Partition}:iam::aws:policy/service-role/${name}`,
    })),
  );
}

interface ValidatedSettings {
  /** Lower case, each once, sorted: the same list however it is given (its file is part of the planner's code). */
  readonly apps: readonly string[];
  readonly keyPrefix: string;
  readonly datasets: readonly Dataset[];
  readonly requestsPerMinute: number;
  readonly copierConcurrency: number;
  readonly batchSize: number;
  readonly queueAheadMinutes: number;
}

/** Props are checked when the construct is created, with messages that name the property. */
function validate(props: LocalyticsExportSyncProps): ValidatedSettings {
  const keyPrefix = (props.keyPrefix ?? 'localytics').replace(/^\/+|\/+$/g, '');
  if (!PREFIX.test(keyPrefix) || keyPrefix.split('/').some((part) => part === '.' || part === '..')) {
    throw new Error(`keyPrefix "${props.keyPrefix}" must be non-empty path segments of letters, digits and !_.'()-`);
  }
  const apiUrlIssue = props.apiUrl === undefined ? undefined : apiUrlProblem(props.apiUrl);
  if (apiUrlIssue) throw new Error(`apiUrl ${apiUrlIssue}`);
  const datasets = props.datasets ?? DATASETS;
  for (const dataset of datasets) {
    if (!(DATASETS as readonly string[]).includes(dataset)) {
      throw new Error(`datasets: unknown dataset "${dataset}"; use any of ${DATASETS.join(', ')}`);
    }
  }
  if (datasets.length === 0) throw new Error('datasets must name at least one of logs, audiences, profiles');
  const apps = new Set<string>();
  for (const given of props.apps) {
    const app = parseAppUuid(given);
    if (!app) throw new Error(`apps: "${given}" is not a Localytics app ID (hex groups separated by dashes)`);
    apps.add(app);
  }
  if (datasets.includes('logs') && apps.size === 0) {
    throw new Error('apps must list at least one Localytics app ID when the logs dataset is synced');
  }
  const requestsPerMinute = props.requestsPerMinute ?? 50;
  const copierConcurrency = props.copierConcurrency ?? 2;
  const batchSize = props.batchSize ?? 5;
  if (!Number.isInteger(copierConcurrency) || copierConcurrency < 2 || copierConcurrency > 1000) {
    throw new Error(
      `copierConcurrency must be a whole number from 2 to 1000 (SQS maximum concurrency), got ${copierConcurrency}`,
    );
  }
  if (!Number.isInteger(requestsPerMinute) || requestsPerMinute < 1) {
    throw new Error(`requestsPerMinute must be a positive whole number, got ${requestsPerMinute}`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10) {
    throw new Error(`batchSize must be a whole number from 1 to 10, got ${batchSize}`);
  }
  const lagAlarm = props.lagAlarmHours ?? 6;
  const reportedLagFloor = (props.lookbackHours ?? 6) + (props.logLagHours ?? 1);
  if (lagAlarm >= reportedLagFloor) {
    // With no hour present in its window, the hourly planner reports lookback + lag hours: the alarm must be below.
    throw new Error(
      `lagAlarmHours (${lagAlarm}) must be less than lookbackHours + logLagHours (${reportedLagFloor}), or a stalled app never alarms`,
    );
  }
  if (props.backfillDays !== undefined && (props.backfillDays < 1 || props.backfillDays > 30)) {
    throw new Error(`backfillDays must be from 1 to 30 (Localytics keeps raw logs 30 days), got ${props.backfillDays}`);
  }
  const queueAheadMinutes = props.queueAheadMinutes ?? 30;
  if (!Number.isInteger(queueAheadMinutes) || queueAheadMinutes < 5 || queueAheadMinutes > 120) {
    throw new Error(`queueAheadMinutes must be a whole number from 5 to 120, got ${queueAheadMinutes}`);
  }
  return {
    apps: [...apps].sort(),
    keyPrefix,
    datasets,
    requestsPerMinute,
    copierConcurrency,
    batchSize,
    queueAheadMinutes,
  };
}

function handlerPath(name: 'planner' | 'copier'): string {
  return fileURLToPath(new URL(`../functions/handlers/${name}.ts`, import.meta.url));
}
