import type { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import type { Logger } from '../core/ports.js';
import { redact } from '../core/redact.js';

/** The core's `Logger` port over Powertools Logger; every field passes through `redact`. */
export function fromPowertools(logger: PowertoolsLogger): Logger {
  const clean = (fields: Record<string, unknown> = {}) =>
    JSON.parse(redact(JSON.stringify(fields))) as Record<string, unknown>;
  return {
    debug: (message, fields) => logger.debug(message, clean(fields)),
    info: (message, fields) => logger.info(message, clean(fields)),
    warn: (message, fields) => logger.warn(message, clean(fields)),
    error: (message, fields) => logger.error(message, clean(fields)),
  };
}
