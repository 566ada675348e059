import { Duration, Validations } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  LogQueryVisualizationType,
  LogQueryWidget,
  MathExpression,
  Metric,
  SingleValueWidget,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC, METRICS_NAMESPACE } from '../functions/handlers/telemetry.js';

export interface MonitoringProps {
  readonly planner: IFunction;
  /** The planner's log group: its `app lag` lines give the dashboard's list of the most lagging apps. */
  readonly plannerLogs: ILogGroup;
  readonly copier: IFunction;
  readonly queue: IQueue;
  readonly deadLetterQueue: IQueue;
  /** Whether raw logs are synced: then the worst lag over all apps alarms. @default true */
  readonly watchesLogs?: boolean;
  /** Alarm when an app's newest copied hour is older than this many hours. @default 6 */
  readonly lagAlarmHours?: number;
  /** Whether audiences or profiles are synced: then exports that vanish or stop refreshing alarm. @default false */
  readonly watchesExports?: boolean;
  /** The planner's threshold for an export not refreshed, for the alarm's description. @default 48 */
  readonly staleExportHours?: number;
  /** Alarm when more than this share of API requests is throttled over an hour. @default 0.2 */
  readonly throttleAlarmRatio?: number;
  /** Email address subscribed to the alarm topic. @default no subscription */
  readonly alarmEmail?: string;
}

/**
 * Alarms that tell the customer when data stops landing, and a dashboard of throughput, lag, throttling, failures
 * and queue depth. Metrics come from the functions as EMF (Powertools Metrics). Every alarm notifies the topic
 * (AWS Control Tower's CT.CLOUDWATCH.PR.1 asks each alarm for an action); `alarmEmail` subscribes to it.
 */
export class Monitoring extends Construct {
  readonly alarms: Alarm[] = [];
  readonly dashboard: Dashboard;
  readonly topic: Topic;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.topic = new Topic(this, 'AlarmTopic', { displayName: 'Localytics Export Sync alarms', enforceSSL: true });
    Validations.of(this.topic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'Alarm notifications carry no data; CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key.',
    });
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
    const lagHours = props.lagAlarmHours ?? 6;
    const throttleRatio = props.throttleAlarmRatio ?? 0.2;
    const metric = (
      metricName: string,
      statistic = 'Sum',
      period = Duration.minutes(5),
      extra: Record<string, string> = {},
    ) =>
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        statistic,
        period,
        dimensionsMap: { service: 'localytics-export-sync', ...extra },
      });

    const dlqDepth = props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: Duration.minutes(5),
      statistic: 'Maximum',
    });
    this.alarm('DeadLetterQueueNotEmpty', {
      metric: dlqDepth,
      threshold: 0,
      description: 'Jobs were parked in the dead-letter queue: read their failureReason attribute.',
    });
    this.alarm('CopierErrors', {
      metric: props.copier.metricErrors({ period: Duration.minutes(5) }),
      threshold: 0,
      description: 'The copier function failed (crash or timeout), beyond the per-job failures it handles.',
    });
    this.alarm('PlannerErrors', {
      metric: props.planner.metricErrors({ period: Duration.hours(1) }),
      threshold: 0,
      description: 'The planner function failed: no new jobs are being planned.',
    });
    // One alarm whatever the number of apps: on the worst lag of any app, which the planner reports each run.
    const worstLag = metric(METRIC.maxLagHours, 'Maximum', Duration.hours(1));
    const appsLagging = metric(METRIC.appsLagging, 'Maximum', Duration.hours(1));
    const watchesLogs = props.watchesLogs ?? true;
    if (watchesLogs) {
      this.alarm('LogLag', {
        metric: worstLag,
        threshold: lagHours,
        description: `Raw logs of at least one app lag more than ${lagHours} hours (or the planner stopped reporting): the dashboard lists the most lagging apps, \`localytics-sync status\` shows each app's hours.`,
        treatMissingData: TreatMissingData.BREACHING,
      });
    }
    const exportConcerns = metric(METRIC.exportConcerns, 'Maximum', Duration.days(1));
    if (props.watchesExports) {
      this.alarm('ExportsNotRefreshed', {
        metric: exportConcerns,
        threshold: 0,
        description: `An audience or profile export left its list or was not regenerated for ${props.staleExportHours ?? 48} hours: the planner's "export vanished" / "export not refreshed" logs name it.`,
      });
    }
    const filesCopied = metric(METRIC.filesCopied, 'Sum', Duration.hours(1));
    this.alarm('NothingCopied', {
      metric: metric(METRIC.filesCopied, 'Sum', Duration.days(1)),
      threshold: 1,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.BREACHING,
      description: 'Nothing was copied in 24 hours.',
    });
    const throttled = metric(METRIC.throttled, 'Sum', Duration.hours(1));
    const apiRequests = metric(METRIC.apiRequests, 'Sum', Duration.hours(1));
    const throttleRate = new MathExpression({
      expression: 'IF(requests > 0, throttled / requests, 0)',
      usingMetrics: { throttled, requests: apiRequests },
      period: Duration.hours(1),
      label: 'throttled share of API requests',
    });
    this.alarm('Throttling', {
      metric: throttleRate,
      threshold: throttleRatio,
      description: `More than ${Math.round(throttleRatio * 100)}% of API requests were throttled (429) in an hour: is another client using the key?`,
    });

    this.dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.days(2) });
    this.dashboard.addWidgets(
      new TextWidget({ markdown: '# Localytics Export Sync', width: 24, height: 1 }),
      new GraphWidget({
        title: 'Throughput',
        left: [filesCopied.with({ label: 'files copied' })],
        right: [metric(METRIC.bytesCopied, 'Sum', Duration.hours(1)).with({ label: 'bytes copied' })],
        width: 12,
      }),
      new GraphWidget({
        title: 'Raw logs lag (hours)',
        left: [worstLag.with({ label: 'worst lag of any app' })],
        leftAnnotations: [{ value: lagHours, label: 'alarm' }],
        right: [appsLagging.with({ label: `apps lagging more than ${lagHours} h` })],
        width: 12,
      }),
      new GraphWidget({
        title: 'API requests and throttling',
        left: [apiRequests.with({ label: 'API requests' }), throttled.with({ label: 'throttled (429)' })],
        right: [
          metric(METRIC.notReady, 'Sum', Duration.hours(1)).with({ label: 'not ready (404)' }),
          exportConcerns.with({ label: 'exports vanished or not refreshed' }),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: 'Failures',
        left: [
          metric(METRIC.failures, 'Sum', Duration.hours(1)).with({ label: 'job failures' }),
          props.copier.metricErrors({ period: Duration.hours(1), label: 'copier errors' }),
          props.planner.metricErrors({ period: Duration.hours(1), label: 'planner errors' }),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: 'Queue depth',
        left: [
          props.queue.metricApproximateNumberOfMessagesVisible({ label: 'jobs waiting' }),
          props.queue.metricApproximateNumberOfMessagesNotVisible({ label: 'jobs in flight' }),
        ],
        right: [dlqDepth.with({ label: 'dead-letter queue' })],
        width: 8,
      }),
      new SingleValueWidget({
        title: 'Copy duration (p50 / p99 ms)',
        metrics: [
          metric(METRIC.copyDuration, 'p50', Duration.hours(1)),
          metric(METRIC.copyDuration, 'p99', Duration.hours(1)),
        ],
        width: 24,
      }),
      new GraphWidget({
        title: 'Backfill: log hours still missing in the planned window (queued, waiting or parked)',
        left: [metric(METRIC.logHoursMissing, 'Maximum', Duration.hours(1)).with({ label: 'log hours missing' })],
        width: 24,
      }),
    );
    if (watchesLogs) {
      // Each planner run logs every app's lag ("app lag"): the latest of each, worst first.
      this.dashboard.addWidgets(
        new LogQueryWidget({
          title: 'Most lagging apps (hours behind, latest planner run)',
          logGroupNames: [props.plannerLogs.logGroupName],
          view: LogQueryVisualizationType.TABLE,
          queryLines: [
            'filter message = "app lag"',
            'stats latest(lagHours) as lagHours by app',
            'sort lagHours desc',
            'limit 50',
          ],
          width: 24,
          height: 8,
        }),
      );
    }
  }

  private alarm(
    id: string,
    options: {
      metric: Metric | MathExpression;
      threshold: number;
      description: string;
      comparisonOperator?: ComparisonOperator;
      treatMissingData?: TreatMissingData;
    },
  ): Alarm {
    const alarm = new Alarm(this, id, {
      metric: options.metric,
      threshold: options.threshold,
      evaluationPeriods: 1,
      comparisonOperator: options.comparisonOperator ?? ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: options.treatMissingData ?? TreatMissingData.NOT_BREACHING,
      alarmDescription: options.description,
    });
    alarm.addAlarmAction(new SnsAction(this.topic));
    this.alarms.push(alarm);
    return alarm;
  }
}
