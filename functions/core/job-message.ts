import * as z from 'zod/mini';
import { IDENTIFIER_TYPES, isAppUuid, isPositiveIntegerId } from './identifiers.js';
import type { SyncJob } from './jobs.js';
import './schema.js';

/** A job on the queue. Versioned, so that a deployment can change the shape without misreading old messages. */
export interface JobMessage {
  readonly v: 1;
  readonly job: SyncJob;
  /** How many times the job was handed back (not ready, throttled, out of time); not SQS's receive count. */
  readonly requeues: number;
  /** When the job was first planned (ISO). */
  readonly plannedAt: string;
  /** Times a copier ran out of time on this job and handed it back. */
  readonly interruptions?: number;
  /** The job ledger claim it was sent under (absent before 0.2): only it may release the job's entry. */
  readonly ledgerClaim?: string;
}

const positiveId = z.string().check(z.refine(isPositiveIntegerId, 'must be a positive integer'));
const epochMs = z.int().check(z.nonnegative());
const generation = { generatedAt: epochMs, resultsCount: z.optional(z.int().check(z.nonnegative())) };

const jobSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('log_hour'),
    appUuid: z.string().check(z.refine(isAppUuid, 'is not a Localytics app ID')),
    hour: epochMs.check(z.refine((value) => value % 3_600_000 === 0, 'must be the start of a UTC hour')),
  }),
  z.object({
    kind: z.literal('audience'),
    audienceId: positiveId,
    identifierType: z.enum(IDENTIFIER_TYPES),
    ...generation,
  }),
  z.object({ kind: z.literal('profile'), profileDbId: positiveId, ...generation }),
  z.object({ kind: z.literal('profile_changes'), profileDbId: positiveId, ...generation }),
]);

const messageSchema = z.object({
  v: z.literal(1),
  job: jobSchema,
  requeues: z.int().check(z.nonnegative()),
  plannedAt: z.string(),
  interruptions: z.optional(z.int().check(z.nonnegative())),
  ledgerClaim: z.optional(z.string().check(z.minLength(1), z.maxLength(100))),
});

export class MalformedMessageError extends Error {
  override readonly name = 'MalformedMessageError';
}

export function newJobMessage(job: SyncJob, now: number, ledgerClaim?: string): JobMessage {
  const message: JobMessage = { v: 1, job, requeues: 0, plannedAt: new Date(now).toISOString() };
  return ledgerClaim === undefined ? message : { ...message, ledgerClaim };
}

export function serializeJobMessage(message: JobMessage): string {
  return JSON.stringify(message);
}

/** Parse and validate a queue message body; identifiers are checked before they can become keys or URLs. */
export function parseJobMessage(body: string): JobMessage {
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    throw new MalformedMessageError('message body is not JSON');
  }
  const result = messageSchema.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new MalformedMessageError(
      `message is not a job: ${issue?.path.join('.') || 'body'} ${issue?.message ?? ''}`.trim(),
    );
  }
  return result.data as JobMessage;
}
