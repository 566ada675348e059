import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, type ITable, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { grantKeyUseVia } from './kms-grants.js';
import type { SyncFunction } from './sync-function.js';

export interface RequestBudgetTableProps {
  /**
   * A budget table another deployment with the same API key created: sharing it keeps both within the key's rate.
   * @default a new table
   */
  readonly existingTable?: ITable;
  /** The customer-managed KMS key `existingTable` is encrypted with, if any. */
  readonly existingTableKey?: IKey;
}

/**
 * The DynamoDB table through which every function (and any CLI run given `--budget-table`) shares the API key's
 * request budget: one item per key (a hash of it), holding its last reserved slots and a shared pause.
 */
export class RequestBudgetTable extends Construct {
  readonly table: ITable;
  private readonly shared: boolean;
  private readonly tableKey?: IKey;

  constructor(scope: Construct, id: string, props: RequestBudgetTableProps = {}) {
    super(scope, id);
    if (props.existingTableKey && !props.existingTable) {
      throw new Error('existingTableKey is the key of existingTable: a created budget table uses the AWS managed key');
    }
    this.shared = props.existingTable !== undefined;
    this.table = props.existingTable ?? this.createTable();
    this.tableKey = props.existingTableKey;
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
    // Every call DynamoDB serves decrypts the table key with the caller's permissions.
    if (this.tableKey) grantKeyUseVia(this.tableKey, fn, 'dynamodb', ['kms:Decrypt']);
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
      // The AWS managed key (aws/dynamodb), as AWS Control Tower's CT.DYNAMODB.PR.2 asks: its key policy lets every
      // principal of the account that may use the table use it through DynamoDB, so no grant is needed.
      encryption: TableEncryption.AWS_MANAGED,
      // CT.DYNAMODB.PR.1; the table holds nothing older than a minute that matters, so a restore is never needed.
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // Only state younger than a minute that matters: nothing to keep when the stack goes.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    return table;
  }
}
