import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createS3Client } from '../adapters/aws-clients.js';
import { createJsonLogger } from '../adapters/console-logger.js';
import { LocalDirSink } from '../adapters/local-dir-sink.js';
import { S3Sink } from '../adapters/s3-sink.js';
import { SecretsManagerSecretProvider, StaticSecretProvider } from '../adapters/secrets.js';
import type { Credentials, Logger, ObjectSink, SecretProvider } from '../core/ports.js';
import { silentLogger } from '../core/ports.js';
import { describeError } from '../core/redact.js';
import type { CliIo } from './io.js';
import { type Destination, UsageError } from './options.js';

/** Build the destination adapter. S3 takes the standard AWS SDK environment. */
export function createSink(destination: Destination, io: CliIo): ObjectSink {
  if (destination.type === 'local') return new LocalDirSink(destination.dir);
  return new S3Sink(createS3Client(io.env), destination);
}

/** Credentials from `--secret-id` (Secrets Manager) or `LOCALYTICS_API_KEY` / `LOCALYTICS_API_SECRET`. */
export async function loadCredentials(secretId: string | undefined, io: CliIo): Promise<Credentials> {
  let provider: SecretProvider;
  if (secretId) {
    provider = new SecretsManagerSecretProvider({ secretId, client: new SecretsManagerClient({}) });
  } else {
    const apiKey = io.env.LOCALYTICS_API_KEY;
    const apiSecret = io.env.LOCALYTICS_API_SECRET;
    if (!apiKey || !apiSecret) {
      throw new UsageError(
        'missing credentials: set LOCALYTICS_API_KEY and LOCALYTICS_API_SECRET, or pass --secret-id <Secrets Manager secret>',
      );
    }
    provider = new StaticSecretProvider({ apiKey, apiSecret });
  }
  try {
    return await provider.getCredentials();
  } catch (error) {
    throw new UsageError(describeError(error));
  }
}

/** Fail before any API call when the destination cannot be read (missing bucket, no permission, no region). */
export async function checkDestination(sink: ObjectSink): Promise<void> {
  try {
    for await (const _ of sink.list('_state/')) break;
  } catch (error) {
    throw new UsageError(`destination ${sink.location} cannot be read: ${describeError(error)}`);
  }
}

export function createLogger(verbose: boolean, io: CliIo): Logger {
  return verbose ? createJsonLogger(io.stderr, 'info') : silentLogger;
}
