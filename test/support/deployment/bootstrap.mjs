// A Lambda container in small, run by the Node.js the functions declare (Node.js 22): imports the bundled handler
// once (the cold start) and runs one invocation at a time as the parent asks over IPC.
// argv: <handler file> <export name> <function name>
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const [handlerFile, exportName, functionName] = process.argv.slice(2);
let handler;
try {
  handler = (await import(pathToFileURL(handlerFile).href))[exportName];
  if (typeof handler !== 'function') throw new Error(`${handlerFile} exports no function "${exportName}"`);
} catch (error) {
  process.send({ type: 'init-error', error: { name: error.name, message: error.message } });
  process.exit(1);
}

process.on('message', async ({ id, event, remainingMs }) => {
  const deadline = Date.now() + remainingMs;
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'test',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done() {},
    fail() {},
    succeed() {},
  };
  try {
    const result = await handler(event, context);
    process.send({ type: 'result', id, result: result ?? null });
  } catch (error) {
    process.send({ type: 'error', id, error: { name: error?.name, message: error?.message } });
  }
});
process.send({ type: 'ready', node: process.version, arch: process.arch });
