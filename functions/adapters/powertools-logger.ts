import type { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import type { Logger } from '../core/ports.js';
import { redact, redactFields } from '../core/redact.js';

/**
 * The core's `Logger` port over Powertools Logger. The message and every field value pass through `redact` before
 * Powertools serializes them (values, never the serialized line: issue 21, item 1).
 */
export function fromPowertools(logger: PowertoolsLogger): Logger {
  const log =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (message: string, fields: Record<string, unknown> = {}) =>
      logger[level](redact(message), redactFields(fields));
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}
