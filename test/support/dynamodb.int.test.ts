import { ConditionalCheckFailedException, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { expect, test } from 'vitest';
import { createDynamoDbClient, createTestTable } from './dynamodb.js';

test('dynalite enforces conditional writes (the shared emulator the budget and job ledger rely on)', async () => {
  const client = createDynamoDbClient();
  const table = await createTestTable(client);
  const put = () =>
    client.send(
      new PutItemCommand({
        TableName: table,
        Item: { pk: { S: 'a' } },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  await put();
  await expect(put()).rejects.toBeInstanceOf(ConditionalCheckFailedException);
});
