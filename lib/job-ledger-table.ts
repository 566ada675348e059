import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
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
      // The AWS managed key (CT.DYNAMODB.PR.2): usable through DynamoDB by the account's principals, no grant needed.
      encryption: TableEncryption.AWS_MANAGED,
      // CT.DYNAMODB.PR.1. Entries expire within hours and the destination is the real ledger: a restore is never needed.
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.DESTROY,
    });
  }

  get tableName(): string {
    return this.table.tableName;
  }
}
