/** The reason of a scope that ran out of time. */
export class ScopeTimeoutError extends Error {
  override readonly name = 'ScopeTimeoutError';
}

export interface AbortScope {
  /** Aborts when the parent aborts (with its reason), after the timeout, or on `abort()`. */
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
  /** Remove the listener on the parent and the timer. Call it when the work ends, however it ends. */
  dispose(): void;
}

/**
 * A signal of its own for one piece of work under a longer-lived one (a call under a run's Ctrl-C signal, a job
 * under a copier's deadline): it aborts with the parent, after `timeoutMs`, or on `abort()`. It puts exactly one
 * listener on the parent and removes it on `dispose()`, so that scopes made for every call of a long run never pile
 * up listeners on the parent (`AbortSignal.any` keeps its sources until garbage collection).
 */
export function abortScope(parent?: AbortSignal, timeoutMs?: number): AbortScope {
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(parent?.reason);
  let timer: NodeJS.Timeout | undefined;
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  if (timeoutMs !== undefined && !controller.signal.aborted) {
    timer = setTimeout(
      () => controller.abort(new ScopeTimeoutError(`timed out after ${Math.round(timeoutMs / 100) / 10} s`)),
      timeoutMs,
    );
    timer.unref?.();
  }
  return {
    signal: controller.signal,
    abort: (reason?: unknown) => controller.abort(reason),
    dispose() {
      if (timer) clearTimeout(timer);
      parent?.removeEventListener('abort', onParentAbort);
    },
  };
}

/** Run `work` with a scope of `parent` (see `abortScope`), disposed when it settles. */
export async function withAbortScope<T>(
  parent: AbortSignal | undefined,
  timeoutMs: number | undefined,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const scope = abortScope(parent, timeoutMs);
  try {
    return await work(scope.signal);
  } finally {
    scope.dispose();
  }
}
