import { sleep } from './sleep.js';

/**
 * The request budget: every Localytics API call takes a slot from it first, so that no sliding 60 s window holds more
 * than the key's rate. Two implementations: `InProcessRequestBudget` (one process: the CLI) and the DynamoDB adapter
 * (`functions/adapters/dynamodb-request-budget.ts`) that every function of a deployment, and a CLI run given
 * `--budget-table`, share.
 */

export interface Clock {
  now(): number;
  /** Wait `ms`; return early (and clear the timer) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    await sleep(ms, signal);
  },
};

export interface AcquireOptions {
  /**
   * The latest time (epoch ms) at which a slot is still of use to the caller (its deadline, less the time the request
   * and the copy need). No later slot is reserved: `acquire` rejects with `BudgetUnavailable` at once instead.
   */
  readonly notAfter?: number;
  /**
   * Work that must happen once the slot is due and before the request leaves (the change-set claim: a few S3 calls).
   * The budget runs it once, then applies its send allowance to the time it took: a request it made too late takes a
   * new slot. An error it throws rejects `acquire` as it is (nothing was sent).
   */
  readonly beforeSend?: () => Promise<void>;
}

/** The port: one slot per API request. */
export interface RequestBudget {
  /**
   * Resolves when the caller may send one request: it must send at once (no `await` in between). Rejects with
   * `BudgetWaitAborted` when `signal` aborts first and with `BudgetUnavailable` when no slot is free by
   * `options.notAfter`; either way nothing may be sent.
   */
  acquire(signal?: AbortSignal, options?: AcquireOptions): Promise<void>;
  /** Stop granting slots until `ms` from now (a 429 answer), for every caller sharing the budget. Never rejects. */
  pause(ms: number): Promise<void>;
}

export const WINDOW_MS = 60_000;
/**
 * How long after its slot a request may still leave, ms: a later one (a stalled or frozen process, a clock jump, a
 * slow `beforeSend`) takes a new slot instead. The margin must hold it.
 */
export const DEFAULT_SEND_ALLOWANCE_MS = 250;
/**
 * Extra width of the 60 s window, ms: the send allowance, plus the spread of send latencies (a fresh TLS connection
 * against a pooled one) and the clock skew between the machines that share a budget.
 */
export const DEFAULT_MARGIN_MS = 1_000;

/** A budget table as users name it: a DynamoDB table name, or a table ARN (a table in another region). */
export const BUDGET_TABLE_REFERENCE =
  /^([A-Za-z0-9_.-]{3,255}|arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table\/[A-Za-z0-9_.-]{3,255})$/;

/** The caller gave up waiting for a slot (its deadline came first); no request was sent. */
export class BudgetWaitAborted extends Error {
  override readonly name = 'BudgetWaitAborted';
  constructor() {
    super('stopped waiting for the request budget (deadline)');
  }
}

/** No slot is free before the caller's `notAfter`: nothing was reserved or sent; try again after `retryAfterMs`. */
export class BudgetUnavailable extends Error {
  override readonly name = 'BudgetUnavailable';
  constructor(
    readonly retryAfterMs: number,
    why = 'no request budget slot is free in time',
  ) {
    super(`${why}; the next one in ${Math.ceil(retryAfterMs / 1000)} s`);
  }
}

/** The retry delay when `error` (or its cause) says the budget had no slot in time; otherwise undefined. */
export function budgetRetryAfterMs(error: unknown): number | undefined {
  for (let current = error; current instanceof Error; current = current.cause) {
    if (current instanceof BudgetUnavailable) return current.retryAfterMs;
  }
  return undefined;
}

/** A whole, positive number of requests per minute, or a `RangeError` naming it. */
export function checkRatePerMinute(ratePerMinute: number): number {
  if (!Number.isInteger(ratePerMinute) || ratePerMinute <= 0) {
    throw new RangeError(`ratePerMinute must be a positive whole number, got ${ratePerMinute}`);
  }
  return ratePerMinute;
}

/**
 * The earliest slot at or after `now` that keeps both rules, given the slots granted before (ascending): calls at least
 * `60 s / rate` apart, and no more than `rate` of them in any window of 60 s widened by `marginMs`.
 */
export function nextSlot(granted: readonly number[], rate: number, now: number, marginMs: number): number {
  let slot = now;
  const last = granted.at(-1);
  if (last !== undefined) slot = Math.max(slot, last + WINDOW_MS / rate);
  if (granted.length >= rate) slot = Math.max(slot, (granted[granted.length - rate] as number) + WINDOW_MS + marginMs);
  return slot;
}

/** Sleep `ms`, or less if `signal` aborts first; true when it aborted. */
export async function sleepUnlessAborted(clock: Clock, ms: number, signal?: AbortSignal): Promise<boolean> {
  if (!signal) {
    await clock.sleep(ms);
    return false;
  }
  const slept = await untilAborted(
    clock.sleep(ms, signal).then(() => true),
    signal,
  );
  return slept === undefined || signal.aborted;
}

/**
 * What `promise` gives, or undefined as soon as `signal` aborts (the promise is left to settle on its own): for
 * waits that must end at a deadline whatever they wait on.
 */
export async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T | undefined> {
  if (!signal) return promise;
  if (signal.aborted) return undefined;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

/** A reserved slot whose time has come, as a budget's `nextDue` hands it to `SlotBudget.acquire`. */
export interface DueSlot {
  /** The slot's time, epoch ms. */
  readonly at: number;
  /** No request leaves on this slot (it would be late, the caller stopped, or `beforeSend` failed). */
  unused(lateMs?: number): void;
}

export interface SlotBudgetOptions {
  /** Extra width of the sliding window, ms (see `DEFAULT_MARGIN_MS`). Default 1000. */
  readonly marginMs?: number;
  /** A request that would leave this much after its slot takes a new one (see `SlotBudget.acquire`). Default 250. */
  readonly sendAllowanceMs?: number;
  readonly clock?: Clock;
}

/**
 * What every budget shares: slots reserved ahead (`nextDue`, each budget its own way), and the rule for sending on
 * them, which lives only here.
 */
export abstract class SlotBudget implements RequestBudget {
  protected readonly marginMs: number;
  protected readonly sendAllowanceMs: number;
  protected readonly clock: Clock;

  constructor(options: SlotBudgetOptions) {
    this.marginMs = options.marginMs ?? DEFAULT_MARGIN_MS;
    this.sendAllowanceMs = options.sendAllowanceMs ?? DEFAULT_SEND_ALLOWANCE_MS;
    if (!(this.sendAllowanceMs >= 0) || !(this.marginMs > this.sendAllowanceMs)) {
      throw new RangeError(
        `the window margin (${this.marginMs} ms) must be larger than the send allowance (${this.sendAllowanceMs} ms) it holds`,
      );
    }
    this.clock = options.clock ?? systemClock;
  }

  /**
   * The rule: a request leaves at most `sendAllowanceMs` after its slot. `beforeSend` runs once, on the first slot
   * that comes; then a request that would leave later than the allowance gives its slot up and takes a new one.
   * Because the allowance is within the window's margin, requests that leave on time keep the rate in every 60 s
   * window at the server, whatever the caller did between slot and send.
   */
  async acquire(signal?: AbortSignal, options: AcquireOptions = {}): Promise<void> {
    const { beforeSend } = options;
    let prepared = beforeSend === undefined;
    for (;;) {
      if (signal?.aborted) throw new BudgetWaitAborted();
      const slot = await this.nextDue(signal, options.notAfter);
      if (!slot) continue;
      if (!prepared) {
        try {
          await beforeSend?.();
        } catch (error) {
          slot.unused();
          throw error;
        }
        prepared = true;
      }
      if (signal?.aborted) {
        slot.unused();
        throw new BudgetWaitAborted();
      }
      const late = this.clock.now() - slot.at;
      if (late <= this.sendAllowanceMs) return;
      slot.unused(late);
    }
  }

  abstract pause(ms: number): Promise<void>;

  /**
   * Reserve the next slot and wait until it is due. Undefined: reserve again (a 429 paused the budget meanwhile).
   * Rejects with `BudgetWaitAborted` or `BudgetUnavailable` when nothing may be sent.
   */
  protected abstract nextDue(
    signal: AbortSignal | undefined,
    notAfter: number | undefined,
  ): Promise<DueSlot | undefined>;
}

export interface InProcessRequestBudgetOptions extends SlotBudgetOptions {
  /** Requests per minute: a whole number. */
  readonly ratePerMinute: number;
}

/**
 * The budget of one process. Slots are reserved synchronously, so any number of concurrent callers share it fairly,
 * first come first served. A `429` pauses the whole budget.
 */
export class InProcessRequestBudget extends SlotBudget {
  readonly ratePerMinute: number;
  /** Granted slot times, oldest first; at most twice the rate kept (a released slot leaves a hole). */
  private readonly granted: number[] = [];
  private pausedUntil = 0;
  private grantedTotal = 0;

  constructor(options: InProcessRequestBudgetOptions) {
    super(options);
    this.ratePerMinute = checkRatePerMinute(options.ratePerMinute);
  }

  /** Requests granted so far. */
  get used(): number {
    return this.grantedTotal;
  }

  async pause(ms: number): Promise<void> {
    this.pausedUntil = Math.max(this.pausedUntil, this.clock.now() + ms);
  }

  protected async nextDue(signal: AbortSignal | undefined, notAfter: number | undefined): Promise<DueSlot | undefined> {
    const slot = this.reserve();
    const wait = slot - this.clock.now();
    if (notAfter !== undefined && slot > notAfter) {
      this.release(slot);
      throw new BudgetUnavailable(wait);
    }
    if (wait > 0 && (await sleepUnlessAborted(this.clock, wait, signal))) {
      this.release(slot);
      throw new BudgetWaitAborted();
    }
    // A 429 may have paused the budget while we slept: give the slot back and queue again.
    if (this.pausedUntil > slot) {
      this.release(slot);
      return undefined;
    }
    // Not used after all (late, stopped): nobody was sent on it, so it is free again.
    return { at: slot, unused: () => this.release(slot) };
  }

  private reserve(): number {
    const slot = Math.max(
      this.pausedUntil,
      nextSlot(this.granted, this.ratePerMinute, this.clock.now(), this.marginMs),
    );
    this.granted.push(slot);
    if (this.granted.length > this.ratePerMinute * 2) this.granted.splice(0, this.granted.length - this.ratePerMinute);
    this.grantedTotal++;
    return slot;
  }

  private release(slot: number): void {
    const index = this.granted.lastIndexOf(slot);
    if (index >= 0) this.granted.splice(index, 1);
    this.grantedTotal--;
  }
}
