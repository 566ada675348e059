import { Duration, Validations } from 'aws-cdk-lib';
import { Queue, QueueEncryption, RedrivePermission } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface ExportQueueProps {
  /** Visibility timeout of the work queue: at least 6 × the consumer's timeout (AWS's advice for Lambda). */
  readonly visibilityTimeout: Duration;
  /** Deliveries before a message moves to the dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
  /** What the queue carries, for the dead-letter queue's description. @default 'copy-job' */
  readonly purpose?: string;
}

/**
 * The copy-job queue and its dead-letter queue: encrypted, TLS only. SQS keeps a message's first enqueue time when
 * it is moved to the dead-letter queue, so the job queue keeps messages 7 days and the dead-letter queue 14: a
 * parked job stays at least 7 days for people to read.
 */
export class ExportQueue extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly maxReceiveCount: number;

  constructor(scope: Construct, id: string, props: ExportQueueProps) {
    super(scope, id);
    this.maxReceiveCount = props.maxReceiveCount ?? 5;
    if (!Number.isInteger(this.maxReceiveCount) || this.maxReceiveCount < 1 || this.maxReceiveCount > 1000) {
      throw new Error(`maxReceiveCount must be a whole number from 1 to 1000, got ${props.maxReceiveCount}`);
    }
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      // Declares it a dead-letter queue (AWS Control Tower's CT.SQS.PR.1 then asks no dead-letter queue of it).
      // "byQueue" would name the job queue, which names this queue as its own: a cycle CloudFormation refuses.
      // "allowAll" is what SQS does without a policy: any queue of this account and region may redrive here.
      redriveAllowPolicy: { redrivePermission: RedrivePermission.ALLOW_ALL },
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: `This is the dead-letter queue of the ${props.purpose ?? 'copy-job'} queue; parked jobs stay here, with their reason, for people.`,
    });
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(7),
      visibilityTimeout: props.visibilityTimeout,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: this.maxReceiveCount },
    });
  }
}
