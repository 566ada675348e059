import { createHash } from 'node:crypto';
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { backoffMs } from '../core/backoff.js';
import { type Logger, silentLogger } from '../core/ports.js';
import { describeError } from '../core/redact.js';
import {
  BudgetUnavailable,
  BudgetWaitAborted,
  checkRatePerMinute,
  type DueSlot,
  nextSlot,
  SlotBudget,
  type SlotBudgetOptions,
  sleepUnlessAborted,
  untilAborted,
  WINDOW_MS,
} from '../core/request-budget.js';

/** The budget table cannot be used (missing, unreachable, access denied). The message names the table. */
export class BudgetTableError extends Error {
  override readonly name = 'BudgetTableError';
}

/**
 * `marginMs` (default 1000) must cover the send allowance (`sendAllowanceMs`, default 250), the spread of send
 * latencies (a fresh TLS connection against a pooled one) and the clock skew between the machines sharing the budget.
 */
export interface DynamoDbRequestBudgetOptions extends SlotBudgetOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** The API key whose budget this is. Only a hash of it is stored. */
  readonly apiKey: string;
  /** The key's requests per minute: a whole number. */
  readonly ratePerMinute: number;
  /**
   * Slots this process holds reserved and not yet used, at most. A process that dies loses the slots it holds (nobody
   * else may use them: the call may have been sent), so holding few keeps the key busy when containers are killed;
   * callers beyond it wait in the process until one of its slots is used. Default 2.
   */
  readonly maxReservedAhead?: number;
  /** Conditional writes tried for one round of reservations before callers are told to come back later. Default 16. */
  readonly maxAttempts?: number;
  readonly random?: () => number;
  readonly logger?: Logger;
}

export interface DynamoDbBudgetStats {
  /** Slots reserved. */
  reserved: number;
  /** Successful conditional writes that reserved them (one per round: callers waiting together share one). */
  commits: number;
  /** Conditional writes that lost a race with another caller and were tried again. */
  conflicts: number;
  /** Acquires that found no slot before their `notAfter` (nothing reserved). */
  deferred: number;
  /** Reserved slots not used: the request would have left too late, a 429 pause came first, or the caller stopped. */
  abandoned: number;
}

/** The state of one key's budget, as stored (attribute names in the item). */
interface BudgetState {
  /** Undefined when there is no item yet (or a malformed one without a numeric version). */
  readonly version?: number;
  /** Reserved slot times, epoch ms, ascending: the last `rate` reservations. */
  readonly slots: readonly number[];
  readonly pausedUntil: number;
  /**
   * The smallest rate of the sharers that wrote within `RATE_MEMORY_MS` (as of `rateSeenAt`): sharers with
   * different rates all keep the smaller one, until its last user has been gone that long.
   */
  readonly rate?: number;
  readonly rateSeenAt?: number;
  /** The item exists but does not have this shape (something else wrote it). */
  readonly malformed?: { readonly rawVersion?: AttributeValue };
}

interface PendingReservation {
  readonly notAfter: number | undefined;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (slot: number) => void;
  readonly reject: (error: Error) => void;
  onAbort?: () => void;
  checked?: boolean;
}

const EMPTY: BudgetState = { slots: [], pausedUntil: 0 };
/** The most a slot is placed ahead of its reservation's expected write time, ms. */
const MAX_WRITE_LEAD_MS = 500;
/** Callers checking the shared pause within this long of each other share one read. */
const PAUSE_READ_REUSE_MS = 250;
/** A caller waiting for a slot further off than this reads the shared pause again this long before it. */
const PAUSE_CHECK_LEAD_MS = 500;
/** The longest a 429's caller spends telling the other sharers (real time). */
const PAUSE_SHARE_LIMIT_MS = 2_000;
/** A smaller rate of another sharer governs everyone until that sharer has not written for this long. */
const RATE_MEMORY_MS = 10 * 60_000;
/** Items idle this long are removed by DynamoDB's TTL (a stale key's budget); any idle item is safe to remove. */
const ITEM_TTL_SECONDS = 7 * 24 * 3600;

/** The region of a table given by ARN (it may be another deployment's, elsewhere); undefined for a name. */
export function budgetTableRegion(nameOrArn: string): string | undefined {
  return /^arn:aws[a-z-]*:dynamodb:([a-z0-9-]+):/.exec(nameOrArn)?.[1];
}

/** The table item of an API key: a hash of the key, never the key. */
export function budgetItemKey(apiKey: string): string {
  return `apikey#${createHash('sha256').update(`localytics-export-sync/request-budget\n${apiKey}`).digest('hex').slice(0, 32)}`;
}

/**
 * The request budget of an API key shared through one DynamoDB item by every process that uses the key: the
 * deployment's functions in every container, and CLI runs given `--budget-table`.
 *
 * The item holds the last `rate` reserved slot times and a shared `pausedUntil`. A caller reads it (strongly
 * consistent), computes the earliest slot that keeps at most `rate` slots in any 60 s window (widened by
 * `marginMs`) and at least `60 s / rate` between slots, and writes it back with a condition on the item's version:
 * reservations are serialized by DynamoDB, so the slots of all callers together keep the rule. A slot may lie in the
 * future: the caller sleeps until it. A caller that dies after reserving only wastes its slot.
 *
 * Sending on time matters as much: a request that would leave later than `sendAllowanceMs` after its slot reserves
 * again instead (`SlotBudget.acquire`, the rule every budget shares). As long as the allowance plus latency spread
 * plus clock skew stays under `marginMs`, the server never sees more than `rate` calls in a 60 s window.
 */
export class DynamoDbRequestBudget extends SlotBudget {
  readonly ratePerMinute: number;
  readonly tableName: string;
  readonly stats: DynamoDbBudgetStats = { reserved: 0, commits: 0, conflicts: 0, deferred: 0, abandoned: 0 };
  private readonly client: DynamoDBClient;
  private readonly key: string;
  private readonly maxAttempts: number;
  private readonly maxReservedAhead: number;
  private readonly random: () => number;
  private readonly logger: Logger;
  /** Pauses this process asked for or saw (known before the shared item says so). */
  private localPausedUntil = 0;
  private reportedMalformed = false;
  /** Callers waiting for a reservation, answered in rounds by `reserveRounds`. */
  private readonly pending: PendingReservation[] = [];
  private reserving = false;
  /** Slots reserved by this process whose callers have neither sent nor given them up yet. */
  private held = 0;
  private pauseRead: { at: number; pausedUntil: Promise<number> } | undefined;
  /** Recent time a reservation write takes (moving average), ms. */
  private writeLatencyMs = 0;

  constructor(options: DynamoDbRequestBudgetOptions) {
    super(options);
    this.ratePerMinute = checkRatePerMinute(options.ratePerMinute);
    this.tableName = options.tableName;
    this.client = options.client;
    this.key = budgetItemKey(options.apiKey);
    this.maxAttempts = options.maxAttempts ?? 16;
    this.maxReservedAhead = options.maxReservedAhead ?? 2;
    if (!Number.isInteger(this.maxReservedAhead) || this.maxReservedAhead < 1) {
      throw new RangeError(`maxReservedAhead must be a positive whole number, got ${this.maxReservedAhead}`);
    }
    this.random = options.random ?? Math.random;
    this.logger = options.logger ?? silentLogger;
  }

  /** Callers waiting in this process until one of its held slots is used (none while a round is under way). */
  get waitingForRoom(): number {
    return this.reserving ? 0 : this.pending.length;
  }

  /**
   * Read the key's item once and probe that it may be written: a missing, unreachable or forbidden table (reading or
   * writing) fails here (`BudgetTableError`), before any API call. The probe is a PutItem whose condition can never
   * hold: DynamoDB checks the permission first, and then writes nothing.
   */
  async check(): Promise<void> {
    await this.read();
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: { pk: { S: this.key } },
          ConditionExpression: 'attribute_exists(#pk) AND attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': 'pk' },
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return;
      throw this.tableError(error);
    }
    throw new BudgetTableError(`request budget table "${this.tableName}" accepted a write it must refuse`);
  }

  protected async nextDue(signal: AbortSignal | undefined, notAfter: number | undefined): Promise<DueSlot | undefined> {
    const slot = await this.reserve(notAfter, signal);
    let due: boolean;
    try {
      due = await this.awaitSlot(slot, signal);
    } finally {
      // Due or given up: this process may reserve the next one for a caller waiting in it.
      this.held--;
      if (this.pending.length > 0 && !this.reserving) void this.reserveRounds();
    }
    if (!due) return undefined;
    return {
      at: slot,
      // The slot stays in the item: nobody else may use it (DynamoDB cannot tell a late send from none).
      unused: (lateMs) => {
        this.stats.abandoned++;
        if (lateMs !== undefined) this.logger.warn('request budget slot missed, reserving again', { lateMs });
      },
    };
  }

  /** Wait for a reserved slot: true when it is due, false when a 429 pause came first (reserve again). */
  private async awaitSlot(slot: number, signal: AbortSignal | undefined): Promise<boolean> {
    if (this.clock.now() < slot - PAUSE_CHECK_LEAD_MS) {
      // A 429 elsewhere may pause the key while we wait: look again shortly before the slot (not at it, so that
      // the read does not delay the request). The reservation stands if the item cannot be read.
      if (await sleepUnlessAborted(this.clock, slot - PAUSE_CHECK_LEAD_MS - this.clock.now(), signal)) {
        this.stats.abandoned++;
        throw new BudgetWaitAborted();
      }
      const pausedUntil = await untilAborted(this.sharedPausedUntil(), signal);
      if (pausedUntil === undefined) {
        this.stats.abandoned++;
        throw new BudgetWaitAborted();
      }
      if (pausedUntil > slot) this.localPausedUntil = Math.max(this.localPausedUntil, pausedUntil);
    }
    if (this.localPausedUntil > slot) {
      this.stats.abandoned++;
      return false;
    }
    const wait = slot - this.clock.now();
    if (wait > 0 && (await sleepUnlessAborted(this.clock, wait, signal))) {
      this.stats.abandoned++;
      throw new BudgetWaitAborted();
    }
    return true;
  }

  async pause(ms: number): Promise<void> {
    const until = this.clock.now() + ms;
    this.localPausedUntil = Math.max(this.localPausedUntil, until);
    // Sharing the pause is worth a moment, not a caller's deadline: a table that hangs is given up on.
    const signal = AbortSignal.timeout(PAUSE_SHARE_LIMIT_MS);
    try {
      for (let attempt = 1; ; attempt++) {
        const state = await this.read(signal);
        if (state.pausedUntil >= until) return;
        const base = state.malformed ? this.repaired() : state;
        if (await this.write({ ...base, pausedUntil: until }, state, signal)) return;
        if (attempt >= this.maxAttempts) throw new BudgetTableError('too many concurrent writers');
        await new Promise((resolve) => setTimeout(resolve, this.contentionBackoff(attempt)));
      }
    } catch (error) {
      // This process still honours the pause; the other callers learn it from their own 429.
      this.logger.warn('could not share the request budget pause', {
        table: this.tableName,
        reason: describeError(error),
      });
    }
  }

  /**
   * Reserve the next slot, or reject with `BudgetUnavailable` when it would be after `notAfter`. The callers of this
   * process that wait at the same time share one conditional write (a group commit): contention on the item grows
   * with the number of containers, not of callers. The process holds at most `maxReservedAhead` unused slots; the
   * callers beyond them wait here (in order) until one is used, unless their slot would already be too late.
   */
  private reserve(notAfter: number | undefined, signal?: AbortSignal): Promise<number> {
    if (signal?.aborted) return Promise.reject(new BudgetWaitAborted());
    return new Promise<number>((resolve, reject) => {
      const request: PendingReservation = { notAfter, signal, resolve, reject };
      if (signal) {
        request.onAbort = () => this.settle(request, new BudgetWaitAborted());
        signal.addEventListener('abort', request.onAbort, { once: true });
      }
      this.pending.push(request);
      if (!this.reserving) void this.reserveRounds();
    });
  }

  /**
   * Rounds of read, assign slots to the waiting callers this process may still hold slots for, conditional write;
   * until nobody waits or the process holds its most. Using a slot starts the rounds again (`acquire`).
   */
  private async reserveRounds(): Promise<void> {
    this.reserving = true;
    try {
      for (let attempt = 1; this.pending.length > 0; attempt++) {
        const room = this.maxReservedAhead - this.held;
        // Full: still tell the callers that arrived since the last pass whether their slot is too late.
        if (room <= 0 && !this.pending.some((request) => request.notAfter !== undefined && !request.checked)) break;
        let round = [...this.pending];
        let state: BudgetState;
        try {
          state = await this.readValid();
        } catch (error) {
          for (const request of round) this.settle(request, error as Error);
          attempt = 0;
          continue;
        }
        // Callers that gave up during the read get no slot: nobody would use or release it.
        round = round.filter((request) => this.pending.includes(request));
        // A slot is never earlier than the write that reserves it can be done: one that is already due when the
        // write returns would be sent late (and so given up) whenever DynamoDB is slow.
        const now = this.clock.now() + this.writeLatencyMs;
        const rate = this.sharedRate(state).rate;
        const slots = [...state.slots];
        const granted: [PendingReservation, number][] = [];
        for (const request of round) {
          const slot = Math.max(state.pausedUntil, this.localPausedUntil, nextSlot(slots, rate, now, this.marginMs));
          if (request.notAfter !== undefined && slot > request.notAfter) {
            // Nothing is reserved for it: the slot goes to the next caller. A caller waiting for room is told now
            // too: its slot can only come later.
            this.stats.deferred++;
            this.settle(request, new BudgetUnavailable(slot - this.clock.now()));
          } else {
            // Callers beyond the room keep waiting, behind the slots reserved now.
            slots.push(slot);
            if (granted.length < room) granted.push([request, slot]);
            else request.checked = true;
          }
        }
        slots.length = state.slots.length + granted.length;
        if (granted.length === 0) {
          attempt = 0;
          continue;
        }
        let written: boolean;
        const writeStarted = this.clock.now();
        try {
          written = await this.write({ ...state, slots: slots.slice(-this.ratePerMinute) }, state);
          this.writeLatencyMs = Math.min(
            MAX_WRITE_LEAD_MS,
            0.8 * this.writeLatencyMs + 0.2 * Math.max(0, this.clock.now() - writeStarted),
          );
        } catch (error) {
          for (const [request] of granted) this.settle(request, error as Error);
          attempt = 0;
          continue;
        }
        if (written) {
          this.stats.reserved += granted.length;
          this.stats.commits++;
          for (const [request, slot] of granted) {
            if (this.settle(request, slot)) this.held++;
            else this.stats.abandoned++;
          }
          attempt = 0;
          continue;
        }
        this.stats.conflicts++;
        if (attempt >= this.maxAttempts) {
          // Callers with a deadline come back later; the others (the CLI) keep trying, more slowly.
          for (const [request] of granted) {
            if (request.notAfter === undefined) continue;
            this.stats.deferred++;
            this.settle(request, new BudgetUnavailable(1000 + this.random() * 4000, 'the request budget is contended'));
          }
          attempt = 0;
        }
        // Real time, whatever the clock: this spreads real writers apart.
        await new Promise((resolve) => setTimeout(resolve, this.contentionBackoff(Math.max(1, attempt))));
      }
    } finally {
      this.reserving = false;
    }
  }

  /** Answer a waiting caller once: its slot, or why it has none. */
  private settle(request: PendingReservation, outcome: number | Error): boolean {
    const index = this.pending.indexOf(request);
    if (index < 0) return false;
    this.pending.splice(index, 1);
    if (request.onAbort) request.signal?.removeEventListener('abort', request.onAbort);
    if (typeof outcome === 'number') request.resolve(outcome);
    else request.reject(outcome);
    return true;
  }

  /** The item, repaired first when something else wrote it in another shape. */
  private async readValid(): Promise<BudgetState> {
    for (;;) {
      const state = await this.read();
      if (!state.malformed) return state;
      // Unknown reservations may be in it: treat the window as full (nothing before a whole window from now) and
      // replace the item so that every caller agrees.
      if (!this.reportedMalformed) {
        this.reportedMalformed = true;
        this.logger.error('request budget item malformed, treating the window as full', { table: this.tableName });
      }
      const repaired = this.repaired();
      if (await this.write(repaired, state)) return { ...repaired, version: (state.version ?? 0) + 1 };
    }
  }

  /** The shared pause as of at most `PAUSE_READ_REUSE_MS` ago: concurrent callers share one read. */
  private sharedPausedUntil(): Promise<number> {
    const now = this.clock.now();
    if (!this.pauseRead || now - this.pauseRead.at > PAUSE_READ_REUSE_MS) {
      this.pauseRead = {
        at: now,
        pausedUntil: this.read().then(
          (state) => state.pausedUntil,
          () => 0,
        ),
      };
    }
    return this.pauseRead.pausedUntil;
  }

  /** A state that admits nothing for one whole window (plus margin) from now. */
  private repaired(): BudgetState {
    return { slots: [], pausedUntil: this.clock.now() + WINDOW_MS + this.marginMs };
  }

  /** The rate every sharer keeps now: this one's, or a smaller one another sharer used recently. */
  private sharedRate(state: BudgetState): { rate: number; seenAt: number } {
    const now = this.clock.now();
    if (
      state.rate !== undefined &&
      state.rate < this.ratePerMinute &&
      state.rateSeenAt !== undefined &&
      now - state.rateSeenAt < RATE_MEMORY_MS
    ) {
      return { rate: state.rate, seenAt: state.rateSeenAt };
    }
    return { rate: this.ratePerMinute, seenAt: now };
  }

  private contentionBackoff(attempt: number): number {
    return backoffMs(attempt - 1, { baseMs: 20, maxMs: 500, random: this.random });
  }

  private async read(signal?: AbortSignal): Promise<BudgetState> {
    try {
      const response = await this.client.send(
        new GetItemCommand({ TableName: this.tableName, Key: { pk: { S: this.key } }, ConsistentRead: true }),
        { abortSignal: signal },
      );
      return response.Item ? parseState(response.Item) : EMPTY;
    } catch (error) {
      throw this.tableError(error);
    }
  }

  /** Write `next` if the item is still as `previous` was read; false when another writer came first. */
  private async write(next: BudgetState, previous: BudgetState, signal?: AbortSignal): Promise<boolean> {
    const version = (previous.version ?? 0) + 1;
    const newest = Math.max(next.pausedUntil, next.slots.at(-1) ?? 0, this.clock.now());
    const condition = conditionFor(previous);
    const shared = this.sharedRate(previous);
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: {
            pk: { S: this.key },
            v: { N: String(version) },
            slots: { L: next.slots.map((slot) => ({ N: String(Math.round(slot)) })) },
            pausedUntil: { N: String(Math.round(next.pausedUntil)) },
            rate: { N: String(shared.rate) },
            rateSeenAt: { N: String(Math.round(shared.seenAt)) },
            expiresAt: { N: String(Math.ceil(newest / 1000) + ITEM_TTL_SECONDS) },
          },
          ConditionExpression: condition.expression,
          ExpressionAttributeNames: condition.names,
          ExpressionAttributeValues: condition.values,
        }),
        { abortSignal: signal },
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw this.tableError(error);
    }
  }

  private tableError(error: unknown): Error {
    if (error instanceof BudgetTableError) return error;
    if ((error as Error | undefined)?.name === 'AbortError') return new BudgetWaitAborted();
    const name = (error as { name?: string } | undefined)?.name ?? '';
    const table = `request budget table "${this.tableName}"`;
    let message: string;
    if (name === 'ResourceNotFoundException') message = `${table} does not exist`;
    else if (/AccessDenied|UnrecognizedClient|InvalidSignature|ExpiredToken|Forbidden/i.test(name))
      message = `no access to ${table}: ${describeError(error)}`;
    else message = `${table} cannot be used: ${describeError(error)}`;
    return new BudgetTableError(message, { cause: error });
  }
}

function conditionFor(previous: BudgetState): {
  expression: string;
  names: Record<string, string>;
  values?: Record<string, AttributeValue>;
} {
  if (previous.malformed) {
    const raw = previous.malformed.rawVersion;
    if (raw && ('N' in raw || 'S' in raw || 'B' in raw)) {
      return { expression: '#v = :v', names: { '#v': 'v' }, values: { ':v': raw } };
    }
    return {
      expression: 'attribute_exists(#pk) AND (attribute_not_exists(#v) OR NOT attribute_type(#v, :n))',
      names: { '#pk': 'pk', '#v': 'v' },
      values: { ':n': { S: 'N' } },
    };
  }
  if (previous.version === undefined) return { expression: 'attribute_not_exists(#pk)', names: { '#pk': 'pk' } };
  return { expression: '#v = :v', names: { '#v': 'v' }, values: { ':v': { N: String(previous.version) } } };
}

/** The stored state, or a `malformed` marker when the item is not what this code writes. */
function parseState(item: Record<string, AttributeValue>): BudgetState {
  const version = numberOf(item.v);
  // A malformed item keeps its numeric version, so that the repair's version is new (no ABA on the condition).
  const malformed: BudgetState = {
    ...EMPTY,
    version: version !== undefined && Number.isInteger(version) && version >= 0 ? version : undefined,
    malformed: { rawVersion: item.v },
  };
  const pausedUntil = numberOf(item.pausedUntil);
  const rate = numberOf(item.rate);
  const rateSeenAt = numberOf(item.rateSeenAt);
  const list = item.slots?.L;
  if (version === undefined || !Number.isInteger(version) || version < 0) return malformed;
  if (pausedUntil === undefined || !list || list.length > 100_000) return malformed;
  if (rate === undefined || !Number.isInteger(rate) || rate < 1) return malformed;
  const slots: number[] = [];
  for (const entry of list) {
    const slot = numberOf(entry);
    if (slot === undefined || (slots.length > 0 && slot < (slots.at(-1) as number))) return malformed;
    slots.push(slot);
  }
  return { version, slots, pausedUntil, rate, rateSeenAt };
}

function numberOf(value: AttributeValue | undefined): number | undefined {
  if (value?.N === undefined) return undefined;
  const number = Number(value.N);
  return Number.isFinite(number) ? number : undefined;
}
