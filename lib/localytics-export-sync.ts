import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { BlockPublicAccess, Bucket, BucketEncryption, type IBucket, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import type { ScheduleExpression } from 'aws-cdk-lib/aws-scheduler';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { InvocationType, Trigger } from 'aws-cdk-lib/triggers';
import { Construct } from 'constructs';
import { apiUrlProblem } from '../functions/adapters/api-url.js';
import { DATASETS, type Dataset, isAppUuid } from '../functions/core/identifiers.js';
import type { TableDefinition } from './catalog/tables.js';
import { Catalog } from './catalog.js';
import { ExportQueue } from './export-queue.js';
import { JobLedgerTable } from './job-ledger-table.js';
import { Monitoring } from './monitoring.js';
import { acknowledgeExpectedWildcards } from './nag-acknowledgements.js';
import { ParquetConverter } from './parquet-converter.js';
import { RequestBudgetTable } from './request-budget-table.js';
import { SyncFunction } from './sync-function.js';
import { SyncSchedules } from './sync-schedules.js';

export interface LocalyticsExportSyncProps {
  /** The customer's bucket. @default a new bucket: encrypted, TLS only, private, versioned, retained on delete */
  readonly bucket?: IBucket;
  /** The customer-managed KMS key of `bucket`, if it uses one: the functions get just the grants they need. */
  readonly bucketKey?: IKey;
  /** Key prefix every object is written under. @default 'localytics' */
  readonly keyPrefix?: string;
  /** Secrets Manager secret holding `{"apiKey": "...", "apiSecret": "..."}`. */
  readonly secret: ISecret;
  /** Localytics app IDs whose raw logs are copied. */
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
}

/** Safe key characters, without `*` and `?`: the prefix becomes part of IAM resource ARNs, where they are wildcards. */
const PREFIX = /^[A-Za-z0-9!_.'()-]+(\/[A-Za-z0-9!_.'()-]+)*$/;

/**
 * Localytics exports into the customer's S3 bucket: scheduled planning, an SQS fan-out of one job per file, copiers
 * that stream each file to its partitioned key, a dead-letter queue for what cannot be done, and IAM scoped to the
 * key prefix.
 */
export class LocalyticsExportSync extends Construct {
  readonly bucket: IBucket;
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
  readonly monitoring: Monitoring;
  /** The Parquet layer's converter, unless `parquet` is false. */
  readonly converter?: ParquetConverter;

  constructor(scope: Construct, id: string, props: LocalyticsExportSyncProps) {
    super(scope, id);
    const settings = validate(props);
    this.keyPrefix = settings.keyPrefix;
    this.bucket = props.bucket ?? this.createBucket();

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
      APPS: props.apps.join(','),
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
      environment,
      // The trigger below invokes the current version; older versions serve nothing and go.
      currentVersionOptions: { removalPolicy: RemovalPolicy.DESTROY },
    });
    this.copier = new SyncFunction(this, 'Copier', {
      entry: handlerPath('copier'),
      description: 'Copies one Localytics export file per job into S3',
      timeout: copierTimeout,
      memorySize: props.copierMemorySize ?? 1024,
      environment,
    });
    this.copier.addEventSource(
      new SqsEventSource(this.jobs.queue, {
        batchSize: settings.batchSize,
        reportBatchItemFailures: true,
        maxConcurrency: settings.copierConcurrency,
      }),
    );

    this.budget = new RequestBudgetTable(this, 'RequestBudget', { existingTable: props.budgetTable });
    this.budget.bind(this.planner);
    this.budget.bind(this.copier);
    this.grantAccess(props);
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
    const tables: TableDefinition['name'][] = [];
    if (settings.datasets.includes('logs')) tables.push('raw_logs');
    if (settings.datasets.includes('audiences')) tables.push('audiences');
    if (settings.datasets.includes('profiles')) tables.push('profiles', 'profile_changes');
    this.catalog = new Catalog(this, 'Catalog', {
      bucket: this.bucket,
      keyPrefix: settings.keyPrefix,
      apps: props.apps,
      databaseName: props.catalogDatabaseName,
      startDate: props.catalogStartDate,
      tables,
      parquet: props.parquet ?? true,
    });
    this.monitoring = new Monitoring(this, 'Monitoring', {
      planner: this.planner,
      copier: this.copier,
      queue: this.jobs.queue,
      deadLetterQueue: this.jobs.deadLetterQueue,
      apps: settings.datasets.includes('logs') ? props.apps : [],
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
      });
      this.converter.bindCopier(this.copier);
    }
    for (const fn of [this.planner, this.copier]) {
      Validations.of(fn).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: 'AWSLambdaBasicExecutionRole only lets the function write its own CloudWatch logs.',
      });
    }
  }

  private grantAccess(props: LocalyticsExportSyncProps): void {
    const objects = this.bucket.arnForObjects(`${this.keyPrefix}/*`);
    const listUnderPrefix = new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['s3:ListBucket'],
      resources: [this.bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${this.keyPrefix}/*`] } },
    });
    // Planner: list and check existence (HEAD needs GetObject) under the prefix, and remove the record of a change
    // set a copier copied but was stopped before removing (it would otherwise show as awaiting copy forever).
    this.planner.addToRolePolicy(listUnderPrefix);
    this.planner.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: [objects] }));
    this.planner.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:DeleteObject'],
        resources: [this.bucket.arnForObjects(`${this.keyPrefix}/_state/profile_changes/*`)],
      }),
    );
    // What the daily run remembers of the export lists, to notice one that vanishes.
    this.planner.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects(`${this.keyPrefix}/_state/exports_seen.json`)],
      }),
    );
    // Copier: also write (PutObject covers the multipart calls), abort uploads and delete its state records.
    this.copier.addToRolePolicy(listUnderPrefix);
    // To find and abort the multipart upload of a copier that was killed mid-copy before writing its key again.
    this.copier.addToRolePolicy(
      new PolicyStatement({ actions: ['s3:ListBucketMultipartUploads'], resources: [this.bucket.bucketArn] }),
    );
    this.copier.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
        resources: [objects],
      }),
    );
    this.copier.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:DeleteObject'],
        resources: [this.bucket.arnForObjects(`${this.keyPrefix}/_state/*`)],
      }),
    );
    const prefix = this.keyPrefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    // The scheduler's invoke role is created at stack level by the schedule target, hence the stack scope.
    acknowledgeExpectedWildcards(Stack.of(this), [
      {
        finding: new RegExp(`^Resource::.*/${prefix}/(_state/(profile_changes/)?)?\\*$`),
        reason: `Object permissions are scoped to the key prefix "${this.keyPrefix}/" (object ARNs under a prefix end in *).`,
      },
      { finding: /^Resource::\*$/, reason: 'X-Ray PutTraceSegments/PutTelemetryRecords support no resource scoping.' },
      {
        finding: /^Resource::<.*Planner.*\.Arn>:\*$/,
        reason: 'EventBridge Scheduler may invoke any version of the planner function (CDK default grant).',
      },
    ]);
    if (props.bucketKey) {
      props.bucketKey.grantDecrypt(this.planner);
      props.bucketKey.grantEncryptDecrypt(this.copier);
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

  private createBucket(): Bucket {
    const bucket = new Bucket(this, 'Bucket', {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
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
    Validations.of(bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'Server access logs need a second bucket the customer may not want; CloudTrail data events cover audits.',
    });
    return bucket;
  }
}

interface ValidatedSettings {
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
  for (const app of props.apps) {
    if (!isAppUuid(app)) throw new Error(`apps: "${app}" is not a Localytics app ID (hex groups separated by dashes)`);
  }
  if (datasets.includes('logs') && props.apps.length === 0) {
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
  return { keyPrefix, datasets, requestsPerMinute, copierConcurrency, batchSize, queueAheadMinutes };
}

function handlerPath(name: 'planner' | 'copier'): string {
  return fileURLToPath(new URL(`../functions/handlers/${name}.ts`, import.meta.url));
}
