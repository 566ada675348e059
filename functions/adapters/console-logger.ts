import type { Logger } from '../core/ports.js';
import { redact, redactFields } from '../core/redact.js';

/** A JSON-lines logger for the CLI (`--verbose`): the message and every field value pass through `redact`. */
export function createJsonLogger(write: (line: string) => void, minLevel: 'debug' | 'info' | 'warn' = 'info'): Logger {
  const levels = ['debug', 'info', 'warn', 'error'];
  const threshold = levels.indexOf(minLevel);
  const log =
    (level: string) =>
    (message: string, fields: Record<string, unknown> = {}) => {
      if (levels.indexOf(level) < threshold) return;
      write(
        `${JSON.stringify({ level, time: new Date().toISOString(), message: redact(message), ...redactFields(fields) })}\n`,
      );
    };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}
