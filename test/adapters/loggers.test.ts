/**
 * Issue 21, item 1: both loggers (Powertools for the Lambdas, the JSON-lines logger of the CLI's `--verbose`) redact
 * values, not serialized text. Before, they redacted the JSON line: the URL pattern swallowed the backslash that
 * escapes a quote (`"http://x\""` became `"http://x/""`), so a field holding `http://x"` gave invalid JSON; the
 * Powertools adapter parsed that line again and threw, which stopped the daily planner before it queued anything.
 * Item 3: a registered secret holding `"` or `\` is escaped in the serialized text, so matching the text missed it.
 */
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import fc from 'fast-check';
import { describe, expect, test, vi } from 'vitest';
import { createJsonLogger } from '../../functions/adapters/console-logger.js';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { MemoryJobLedger } from '../../functions/adapters/memory-job-ledger.js';
import { fromPowertools } from '../../functions/adapters/powertools-logger.js';
import { ApiResponseError } from '../../functions/core/errors.js';
import { DAY_MS } from '../../functions/core/hours.js';
import type { JobMessage } from '../../functions/core/job-message.js';
import { type PlannerSettings, planToQueue } from '../../functions/core/plan-to-queue.js';
import type { ExportListing, ExportSource, Logger } from '../../functions/core/ports.js';
import type { JobQueue } from '../../functions/core/process-job.js';
import { registerSecret } from '../../functions/core/redact.js';
import { tempDir } from '../support/temp.js';

/**
 * Record what is written to stdout and stderr (Powertools writes warnings and errors to stderr) until `stop`, which
 * answers the text.
 */
function captureOutput(): { stop: () => string } {
  let printed = '';
  const record = (chunk: unknown) => {
    printed += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    return true;
  };
  const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(record);
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(record);
  return {
    stop() {
      stdout.mockRestore();
      stderr.mockRestore();
      return printed;
    },
  };
}

/** What a synchronous `act` (one log call) printed. */
function written(act: () => void): string {
  const capture = captureOutput();
  try {
    act();
  } catch (error) {
    capture.stop();
    throw error;
  }
  return capture.stop();
}

interface Adapter {
  readonly name: string;
  /** A logger and what one call of it printed. */
  create(): { logger: Logger; output: (act: () => void) => string };
}

const adapters: Adapter[] = [
  {
    name: 'the Powertools adapter (Lambdas)',
    create() {
      const logger = fromPowertools(new PowertoolsLogger({ serviceName: 'test', logLevel: 'DEBUG' }));
      return { logger, output: written };
    },
  },
  {
    name: 'the JSON-lines logger (CLI --verbose)',
    create() {
      let out = '';
      const logger = createJsonLogger((line) => {
        out += line;
      }, 'debug');
      return {
        logger,
        output: (act) => {
          out = '';
          act();
          return out;
        },
      };
    },
  },
];

/** The one JSON object of a printed line; fails when the output is not exactly one line of JSON. */
function oneJsonLine(output: string): Record<string, unknown> {
  expect(output.endsWith('\n')).toBe(true);
  expect(output.indexOf('\n')).toBe(output.length - 1);
  const parsed = JSON.parse(output) as unknown;
  expect(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)).toBe(true);
  return parsed as Record<string, unknown>;
}

/** Every string in a parsed line, keys included. */
function stringsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsOf);
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, inner]) => [key, ...stringsOf(inner)]);
  }
  return [];
}

/** Text with the redaction markers cut out: a secret cannot span one (secrets here hold no brackets). */
function withoutMarkers(text: string): string[] {
  return text.split(/\[redacted\]|\[unparseable url\]/);
}

/** Powertools drops these keys (and warns on a second line); the code's keys are fixed names, never these. */
const POWERTOOLS_RESERVED = ['level', 'message', 'sampling_rate', 'service', 'timestamp'];

describe.each(adapters)('$name', (adapter) => {
  test('a field holding http://x" gives one valid JSON line, the field kept', () => {
    const { logger, output } = adapter.create();
    const line = oneJsonLine(
      output(() => logger.warn('export skipped', { reason: 'unexpected source_type "http://x"' })),
    );
    expect(line.reason).toBe('unexpected source_type "http://x/"');
  });

  test('a registered secret holding a quote and a backslash is redacted (issue 21, item 3)', () => {
    const secret = 'pa"ss\\w0rd-9f8e';
    registerSecret(secret);
    const { logger, output } = adapter.create();
    const text = output(() => logger.error('export list failed', { reason: `the body echoed ${secret} back` }));
    const line = oneJsonLine(text);
    expect(line.reason).toBe('the body echoed [redacted] back');
    expect(text).not.toContain(JSON.stringify(secret).slice(1, -1));
  });

  test('property: any string values give one valid JSON line holding no secret, signature or credential', () => {
    const { logger, output } = adapter.create();
    const alphabet = 'abcXYZ019+/=_-"\\\' <>%:@?&#.\n\u2028é'.split('');
    const secretArb = fc.string({ unit: fc.constantFrom(...alphabet), minLength: 4, maxLength: 14 });
    const tokenArb = fc.string({
      unit: fc.constantFrom(...'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789'),
      minLength: 12,
      maxLength: 24,
    });
    const scenario = fc
      .record({
        secrets: fc.array(secretArb, { minLength: 1, maxLength: 3 }),
        tokens: fc.array(tokenArb, { minLength: 2, maxLength: 2 }),
      })
      .chain(({ secrets, tokens }) => {
        const [signature, basic] = tokens as [string, string];
        // Pieces that the code's fields really carry: API values, URLs, error texts; with quotes and backslashes.
        const piece = fc.oneof(
          fc.string({ unit: 'binary', maxLength: 20 }),
          fc.constantFrom(...alphabet),
          fc.constantFrom('http://x"', 'https://', 'http://a\\', '\\"', '"', '\\'),
          fc.constantFrom(...secrets),
          fc.constantFrom(...secrets.map((secret) => Buffer.from(secret).toString('base64'))),
          fc.constant(` https://bucket.s3.amazonaws.com/k?X-Amz-Credential=AKIA&X-Amz-Signature=${signature}`),
          fc.constant(` X-Amz-Signature=${signature}`),
          fc.constant(` Authorization: Basic ${basic}`),
        );
        const text = fc.array(piece, { maxLength: 8 }).map((pieces) => pieces.join(''));
        const key = fc
          .oneof(fc.string({ unit: 'binary', maxLength: 12 }), text)
          .filter((k) => !POWERTOOLS_RESERVED.includes(k));
        const value = fc.oneof(text, fc.array(text, { maxLength: 3 }), fc.dictionary(key, text, { maxKeys: 3 }));
        return fc.record({
          secrets: fc.constant(secrets),
          forbidden: fc.constant([signature, basic]),
          level: fc.constantFrom('debug', 'info', 'warn', 'error') as fc.Arbitrary<keyof Logger>,
          message: text,
          fields: fc.dictionary(key, value, { maxKeys: 5 }),
        });
      });
    fc.assert(
      fc.property(scenario, ({ secrets, forbidden, level, message, fields }) => {
        for (const secret of secrets) registerSecret(secret);
        const text = output(() => logger[level](message, fields));
        const line = oneJsonLine(text);
        const leaks = [...secrets, ...secrets.map((secret) => Buffer.from(secret).toString('base64')), ...forbidden];
        for (const piece of [...stringsOf(line).flatMap(withoutMarkers), ...withoutMarkers(text)]) {
          for (const leak of leaks) expect(piece).not.toContain(leak);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('the daily planner with the Powertools logger (issue 21, item 1)', () => {
  const app = '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8';
  const now = Date.UTC(2026, 10, 29, 12, 30);
  const settings: PlannerSettings = {
    apps: [app],
    datasets: new Set(['logs', 'audiences', 'profiles']),
    logLagHours: 1,
    lookbackHours: 6,
    backfillDays: 2,
    requestsPerMinute: 1000,
    queueAheadMinutes: 30,
  };
  const sent: JobMessage[] = [];
  const queue: JobQueue = {
    async enqueue(messages) {
      sent.push(...messages);
    },
    async requeue() {},
    async park() {},
  };

  function source(audiences: () => Promise<ExportListing[]>): ExportSource {
    return {
      listAudiences: audiences,
      listProfiles: async () => [],
      resolve: async () => ({ status: 'not_ready' }),
      download: async () => {
        throw new Error('planning never downloads');
      },
    };
  }

  /** One daily run; everything the Powertools logger printed meanwhile. */
  async function plan(exportSource: ExportSource) {
    const logger = fromPowertools(new PowertoolsLogger({ serviceName: 'test', logLevel: 'DEBUG' }));
    const deps = {
      source: exportSource,
      sink: new LocalDirSink(await tempDir()),
      queue,
      ledger: new MemoryJobLedger(),
      logger,
    };
    const capture = captureOutput();
    try {
      const summary = await planToQueue('exports', settings, deps, now);
      return {
        summary,
        printed: capture.stop(),
        logHours: sent.filter((message) => message.job.kind === 'log_hour').length,
      };
    } finally {
      capture.stop();
      sent.length = 0;
    }
  }

  /** The `reason` of the line logged with `message`; every line must be JSON. */
  function loggedReason(printed: string, message: string): string | undefined {
    const lines = printed
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { message: string; reason?: string });
    return lines.find((line) => line.message === message)?.reason;
  }

  test('one audience whose source_type is a URL is skipped and logged; the backfill is still queued', async () => {
    const odd: ExportListing = {
      id: 7,
      name: 'odd',
      sourceType: 'http://x"',
      sourceId: '12',
      jobType: 'idfa',
      resultsCount: 1,
      resultsGeneratedAt: now - DAY_MS,
    };
    const baseline = await plan(source(async () => []));
    const { summary, printed, logHours } = await plan(source(async () => [odd]));
    expect(summary.skipped).toEqual([
      { what: 'audience 12/idfa', reason: 'unexpected source_type "http://x"" in the audience list' },
    ]);
    expect(baseline.logHours).toBeGreaterThan(0);
    expect(logHours).toBe(baseline.logHours);
    expect(loggedReason(printed, 'export skipped')).toBe('unexpected source_type "http://x/"" in the audience list');
  });

  test('a list failure whose reason quotes a URL (a captive portal answering 200) is logged; the backfill is still queued', async () => {
    // The reason as the client wrote it before the fix of item 3 (V8's JSON.parse error quotes the body).
    const portal = new ApiResponseError(
      '/v1/exports/audiences did not answer JSON: Unexpected token \'h\', "http://portal.example/login?x=1"... is not valid JSON',
      '/v1/exports/audiences',
    );
    const baseline = await plan(source(async () => []));
    const { summary, printed, logHours } = await plan(
      source(async () => {
        throw portal;
      }),
    );
    expect(summary.listFailures).toEqual([
      { endpoint: '/v1/exports/audiences', reason: expect.stringContaining('did not answer JSON') },
    ]);
    expect(logHours).toBe(baseline.logHours);
    expect(loggedReason(printed, 'export list failed')).toContain('"http://portal.example/login?[redacted]"');
  });
});
