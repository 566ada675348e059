import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';

/**
 * The deployment's queued-job ledger: one small item per job whose message waits in this deployment's queue (or was
 * parked lately), plus the backlog mark. On-demand, entries expire by TTL (`expiresAt`). It belongs to one queue,
 * so it is never shared between deployments, and it is deleted with the stack: losing it costs a re-plan, no data.
 */
export class JobLedgerTable extends Construct {
  readonly table: Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.table = new Table(this, 'Table', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'expiresAt',
      removalPolicy: RemovalPolicy.DESTROY,
    });
    Validations.of(this.table).acknowledge({
      id: 'AwsSolutions-DDB3',
      reason:
        'The ledger holds only which jobs are queued right now; every entry expires within hours and the destination is the real ledger, so there is nothing to restore.',
    });
  }

  get tableName(): string {
    return this.table.tableName;
  }
}
