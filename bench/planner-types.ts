/** What the planner benchmark passes to its child process and gets back. */
export interface PlanChildConfig {
  readonly sink:
    | { readonly type: 's3'; readonly endpoint: string; readonly bucket: string; readonly prefix: string }
    | { readonly type: 'local'; readonly dir: string };
  readonly sqsEndpoint: string;
  readonly queueUrl: string;
  readonly dlqUrl: string;
  readonly apps: readonly string[];
  readonly now: number;
}

export interface PlanChildResult {
  readonly window: { readonly from: number; readonly to: number };
  readonly enqueued: number;
  readonly present: number;
  readonly beyondRetention: number;
  readonly totalMs: number;
  /** Time inside `JobQueue.enqueue` (the SendMessageBatch calls). */
  readonly enqueueMs: number;
  /** The rest: listing the destination and building the plan. */
  readonly planMs: number;
  /** SDK commands sent, with their summed latency. */
  readonly commands: Record<string, { calls: number; ms: number }>;
  readonly heapUsedMiB: number;
}
