import { Duration, TimeZone } from 'aws-cdk-lib';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';

export interface SyncSchedulesProps {
  readonly planner: IFunction;
  /** When the hourly log planning runs. @default minute 20 of every hour, UTC */
  readonly logSchedule?: ScheduleExpression;
  /**
   * When the daily audience/profile pull runs. Localytics refreshes them from 8 a.m. US Eastern, usually within an
   * hour; the time zone makes daylight saving time a non-issue. @default 09:30 America/New_York
   */
  readonly exportsSchedule?: ScheduleExpression;
  /** When the planner tops the queue up from a backlog (it does nothing when there is none). @default every 15 minutes */
  readonly topupSchedule?: ScheduleExpression;
}

/**
 * EventBridge Scheduler schedules that start the planner: `{"task":"logs"}` hourly, `{"task":"exports"}` daily,
 * `{"task":"topup"}` every 15 minutes.
 */
export class SyncSchedules extends Construct {
  readonly logs: Schedule;
  readonly exports: Schedule;
  readonly topup: Schedule;

  constructor(scope: Construct, id: string, props: SyncSchedulesProps) {
    super(scope, id);
    const target = (task: 'logs' | 'exports' | 'topup') =>
      new LambdaInvoke(props.planner, {
        input: ScheduleTargetInput.fromObject({ task }),
        retryAttempts: 2,
        maxEventAge: Duration.hours(1),
      });
    this.logs = new Schedule(this, 'HourlyLogs', {
      description: 'Plan the raw-log hours that should be ready by now',
      schedule: props.logSchedule ?? ScheduleExpression.cron({ minute: '20', hour: '*', timeZone: TimeZone.ETC_UTC }),
      target: target('logs'),
    });
    this.exports = new Schedule(this, 'DailyExports', {
      description: 'Pull audiences and profiles after the daily Localytics refresh, and backfill log gaps',
      schedule:
        props.exportsSchedule ??
        ScheduleExpression.cron({ minute: '30', hour: '9', timeZone: TimeZone.AMERICA_NEW_YORK }),
      target: target('exports'),
    });
    this.topup = new Schedule(this, 'BacklogTopUp', {
      description: 'Top the job queue up from the backlog of missing log hours, oldest first (a no-op without one)',
      schedule:
        props.topupSchedule ?? ScheduleExpression.cron({ minute: '0/15', hour: '*', timeZone: TimeZone.ETC_UTC }),
      target: target('topup'),
    });
  }
}
