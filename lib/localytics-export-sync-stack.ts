import { CfnOutput, Duration, Fn, Stack, type StackProps, TimeZone, Validations } from 'aws-cdk-lib';
import { type ITable, Table } from 'aws-cdk-lib/aws-dynamodb';
import { SecurityGroup, Subnet, Vpc } from 'aws-cdk-lib/aws-ec2';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { ScheduleExpression } from 'aws-cdk-lib/aws-scheduler';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { StackConfig } from './config.js';
import { LocalyticsExportSync, type NetworkProps } from './localytics-export-sync.js';

export interface LocalyticsExportSyncStackProps extends StackProps {
  readonly config: StackConfig;
}

/** The deployable stack: the construct configured from CDK context (see README, "Deploy to AWS"). */
export class LocalyticsExportSyncStack extends Stack {
  readonly sync: LocalyticsExportSync;

  constructor(scope: Construct, id: string, props: LocalyticsExportSyncStackProps) {
    super(scope, id, props);
    const { config } = props;
    const secret = config.secretName.startsWith('arn:')
      ? Secret.fromSecretCompleteArn(this, 'ApiCredentials', config.secretName)
      : Secret.fromSecretNameV2(this, 'ApiCredentials', config.secretName);
    this.sync = new LocalyticsExportSync(this, 'Sync', {
      bucket: config.bucketName ? Bucket.fromBucketName(this, 'Destination', config.bucketName) : undefined,
      bucketKey: config.bucketKmsKeyArn ? Key.fromKeyArn(this, 'DestinationKey', config.bucketKmsKeyArn) : undefined,
      keyPrefix: config.keyPrefix,
      secret,
      apps: config.apps,
      datasets: config.datasets,
      apiUrl: config.apiUrl,
      requestsPerMinute: config.requestsPerMinute,
      budgetTable: config.budgetTable ? importTable(this, config.budgetTable) : undefined,
      budgetTableKey: config.budgetTableKmsKeyArn
        ? Key.fromKeyArn(this, 'SharedRequestBudgetKey', config.budgetTableKmsKeyArn)
        : undefined,
      network: importNetwork(this, config),
      copierConcurrency: config.copierConcurrency,
      copierTimeout: Duration.minutes(config.copierTimeoutMinutes),
      batchSize: config.batchSize,
      maxReceiveCount: config.maxReceiveCount,
      logLagHours: config.logLagHours,
      lookbackHours: config.lookbackHours,
      backfillDays: config.backfillDays,
      queueAheadMinutes: config.queueAheadMinutes,
      logSchedule: ScheduleExpression.expression(`cron(${config.logScheduleCron})`, TimeZone.ETC_UTC),
      catalogDatabaseName: config.catalogDatabaseName,
      catalogStartDate: config.catalogStartDate,
      lagAlarmHours: config.lagAlarmHours,
      staleExportHours: config.staleExportHours,
      alarmEmail: config.alarmEmail,
      parquet: config.parquet,
      converterMemorySize: config.converterMemorySize,
      exportsSchedule: ScheduleExpression.expression(
        `cron(${config.exportsScheduleCron})`,
        TimeZone.of(config.exportsScheduleTimeZone),
      ),
    });
    new CfnOutput(this, 'DestinationBucket', { value: this.sync.bucket.bucketName });
    new CfnOutput(this, 'KeyPrefix', { value: this.sync.keyPrefix });
    new CfnOutput(this, 'JobQueueUrl', { value: this.sync.jobs.queue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.sync.jobs.deadLetterQueue.queueUrl });
    // For `localytics-sync sync --budget-table` and for other deployments with the same key (context budgetTable).
    new CfnOutput(this, 'RequestBudgetTable', { value: this.sync.budget.table.tableName });
    new CfnOutput(this, 'PlannerFunction', { value: this.sync.planner.functionName });
    new CfnOutput(this, 'GlueDatabase', { value: this.sync.catalog.databaseName });
    new CfnOutput(this, 'Dashboard', { value: this.sync.monitoring.dashboard.dashboardName });
    if (this.sync.converter) {
      new CfnOutput(this, 'ParquetDeadLetterQueueUrl', { value: this.sync.converter.deadLetterQueue.queueUrl });
    }
  }
}

/** The VPC, subnets and security groups named in the context, by ID: synth makes no lookups. */
function importNetwork(scope: Construct, config: StackConfig): NetworkProps | undefined {
  if (!config.vpcId || !config.vpcSubnetIds) return undefined;
  // The AZs serve only subnet selection by type, which this stack never does (it names its subnets): the region's
  // AZs, resolved by CloudFormation, and no lookup at synth.
  const vpc = Vpc.fromVpcAttributes(scope, 'Vpc', { vpcId: config.vpcId, availabilityZones: Fn.getAzs() });
  Validations.of(vpc).acknowledge({
    id: 'Annotation::@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones',
    reason: 'The stack never selects subnets by type or zone: it names the subnets.',
  });
  return {
    vpc,
    subnets: config.vpcSubnetIds.map((id) => {
      const subnet = Subnet.fromSubnetId(scope, `Subnet-${id}`, id);
      Validations.of(subnet).acknowledge({
        id: 'Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId',
        reason: 'The stack only names the subnets to Lambda; it never reads their route tables.',
      });
      return subnet;
    }),
    securityGroups: config.vpcSecurityGroupIds?.map((id) => SecurityGroup.fromSecurityGroupId(scope, `SG-${id}`, id)),
  };
}

/** Another deployment's budget table: by name (this account and region) or by ARN (another region). */
function importTable(scope: Construct, nameOrArn: string): ITable {
  return nameOrArn.startsWith('arn:')
    ? Table.fromTableArn(scope, 'SharedRequestBudget', nameOrArn)
    : Table.fromTableName(scope, 'SharedRequestBudget', nameOrArn);
}
