/** What the planner benchmark passes to its child process and gets back. */
export interface PlanChildConfig {
  readonly task: 'exports' | 'topup' | 'logs';
  readonly s3Endpoint: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly sqsEndpoint: string;
  readonly queueUrl: string;
  readonly dlqUrl: string;
  readonly dynamoDbEndpoint: string;
  readonly ledgerTable: string;
  readonly apps: readonly string[];
  readonly now: number;
  readonly requestsPerMinute: number;
  readonly queueAheadMinutes: number;
}

export interface PlanChildResult {
  readonly window: { readonly from: number; readonly to: number };
  readonly enqueued: number;
  readonly present: number;
  readonly logHoursMissing: number;
  readonly backlog: number;
  readonly alreadyQueued: number;
  readonly totalMs: number;
  /** SDK commands sent, with their summed latency. */
  readonly commands: Record<string, { calls: number; ms: number }>;
  readonly heapUsedMiB: number;
}
