import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import { type JobLedger, LedgerError, type LedgerSnapshot } from '../core/job-ledger.js';
import { describeError } from '../core/redact.js';

/** The partition key of the backlog mark; job ids never start with `#`. */
const BACKLOG_KEY = '#backlog';

/**
 * The `JobLedger` on a DynamoDB table of this deployment (partition key `pk`, TTL attribute `expiresAt` in epoch
 * seconds). One small item per queued or parked job (a queued one names its claim: `claim`), plus the backlog mark. DynamoDB deletes expired items lazily
 * (hours, sometimes days later), so every read and every claim compares `expiresAt` with the clock itself.
 */
export class DynamoDbJobLedger implements JobLedger {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  get location(): string {
    return `DynamoDB table "${this.tableName}"`;
  }

  /** A strongly consistent scan of the live items: the table holds only this deployment's queued and parked jobs. */
  async read(now: number): Promise<LedgerSnapshot> {
    const queued = new Set<string>();
    const parked = new Set<string>();
    let backlogFrom: number | undefined;
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.call('read', () =>
        this.client.send(
          new ScanCommand({
            TableName: this.tableName,
            ConsistentRead: true,
            ProjectionExpression: 'pk, #state, #from',
            FilterExpression: 'expiresAt > :now',
            ExpressionAttributeNames: { '#state': 'state', '#from': 'from' },
            ExpressionAttributeValues: { ':now': { N: String(toSeconds(now)) } },
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of page.Items ?? []) {
        const id = item.pk?.S;
        if (id === undefined) continue;
        if (id === BACKLOG_KEY) backlogFrom = item.from?.N === undefined ? undefined : Number(item.from.N);
        else if (item.state?.S === 'parked') parked.add(id);
        else queued.add(id);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return { queued, parked, backlogFrom };
  }

  async claim(id: string, until: number, now: number, claimId: string): Promise<boolean> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: item(id, 'queued', until, claimId),
          ConditionExpression: 'attribute_not_exists(pk) OR expiresAt <= :now',
          ExpressionAttributeValues: { ':now': { N: String(toSeconds(now)) } },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw this.failure('claim', error);
    }
  }

  async keep(id: string, until: number, claimId: string | undefined): Promise<void> {
    await this.put('keep', item(id, 'queued', until, claimId));
  }

  async rest(id: string, until: number): Promise<void> {
    await this.put('rest', item(id, 'parked', until));
  }

  async release(id: string, claimId: string | undefined): Promise<void> {
    try {
      await this.client.send(
        new DeleteItemCommand({
          TableName: this.tableName,
          Key: { pk: { S: id } },
          ...(claimId === undefined
            ? { ConditionExpression: 'attribute_not_exists(#claim)', ExpressionAttributeNames: { '#claim': 'claim' } }
            : {
                ConditionExpression: '#claim = :claim',
                ExpressionAttributeNames: { '#claim': 'claim' },
                ExpressionAttributeValues: { ':claim': { S: claimId } },
              }),
        }),
      );
    } catch (error) {
      // The entry is another claim's (a newer planner run's, or a parked job's): it stands.
      if (error instanceof ConditionalCheckFailedException) return;
      throw this.failure('release', error);
    }
  }

  async markBacklog(from: number, until: number): Promise<void> {
    await this.put('markBacklog', {
      pk: { S: BACKLOG_KEY },
      from: { N: String(from) },
      expiresAt: { N: String(toSeconds(until)) },
    });
  }

  async clearBacklog(from: number): Promise<void> {
    try {
      await this.client.send(
        new DeleteItemCommand({
          TableName: this.tableName,
          Key: { pk: { S: BACKLOG_KEY } },
          ConditionExpression: '#from = :from',
          ExpressionAttributeNames: { '#from': 'from' },
          ExpressionAttributeValues: { ':from': { N: String(from) } },
        }),
      );
    } catch (error) {
      // Another run marked a newer backlog (or cleared it) meanwhile: its mark stands.
      if (error instanceof ConditionalCheckFailedException) return;
      throw this.failure('clearBacklog', error);
    }
  }

  private async put(operation: string, entry: Record<string, AttributeValue>): Promise<void> {
    await this.call(operation, () => this.client.send(new PutItemCommand({ TableName: this.tableName, Item: entry })));
  }

  private async call<T>(operation: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      throw this.failure(operation, error);
    }
  }

  private failure(operation: string, error: unknown): LedgerError {
    const what = error instanceof Error ? `${error.name}: ${describeError(error)}` : describeError(error);
    return new LedgerError(`job ledger (${this.location}): ${operation} failed: ${what}`, { cause: error });
  }
}

function item(id: string, state: 'queued' | 'parked', until: number, claimId?: string): Record<string, AttributeValue> {
  const entry: Record<string, AttributeValue> = {
    pk: { S: id },
    state: { S: state },
    expiresAt: { N: String(toSeconds(until)) },
  };
  if (claimId !== undefined) entry.claim = { S: claimId };
  return entry;
}

/** DynamoDB's TTL attribute holds epoch seconds; rounding up keeps an entry alive at least until `ms`. */
function toSeconds(ms: number): number {
  return Math.ceil(ms / 1000);
}
