import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import { AttributeType, BillingMode, type ITable, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { SyncFunction } from './sync-function.js';

export interface RequestBudgetTableProps {
  /**
   * A budget table another deployment with the same API key created: sharing it keeps both within the key's rate.
   * @default a new table
   */
  readonly existingTable?: ITable;
}

/**
 * The DynamoDB table through which every function (and any CLI run given `--budget-table`) shares the API key's
 * request budget: one item per key (a hash of it), holding its last reserved slots and a shared pause.
 */
export class RequestBudgetTable extends Construct {
  readonly table: ITable;
  private readonly shared: boolean;

  constructor(scope: Construct, id: string, props: RequestBudgetTableProps = {}) {
    super(scope, id);
    this.shared = props.existingTable !== undefined;
    this.table = props.existingTable ?? this.createTable();
  }

  /** Let `fn` take slots (read and conditionally write budget items, nothing else) and tell it the table. */
  bind(fn: SyncFunction): void {
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
        resources: [this.table.tableArn],
        // Only budget items: a shared table may hold other deployments' keys, never anything else of theirs.
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['apikey#*'] } },
      }),
    );
    // A shared table by ARN: it may live in another region (the functions call that region).
    fn.addEnvironment('BUDGET_TABLE', this.shared ? this.table.tableArn : this.table.tableName);
  }

  private createTable(): Table {
    const table = new Table(this, 'Table', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      // A few writes a second at most (the key's rate): on-demand costs nothing when idle.
      billingMode: BillingMode.PAY_PER_REQUEST,
      // The item of a key no longer used expires a week after its last slot.
      timeToLiveAttribute: 'expiresAt',
      // Encrypted at rest with an AWS owned key: the items hold a hash of the key and times, no secret.
      encryption: TableEncryption.DEFAULT,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: false },
      // Only state younger than a minute that matters: nothing to keep when the stack goes.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    Validations.of(table).acknowledge({
      id: 'AwsSolutions-DDB3',
      reason:
        'The budget table holds reservations that matter for a minute; a point-in-time restore would bring back nothing of value.',
    });
    return table;
  }
}
