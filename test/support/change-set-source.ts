import { Readable } from 'node:stream';
import type { SyncJob } from '../../functions/core/jobs.js';
import type { DownloadedFile, ExportSource, ResolveOptions, ResolveOutcome } from '../../functions/core/ports.js';

export const changeSetBody = '{"profile":{"_ll.raw_customer_id":"c1"},"updates":{"a":"1"}}\n';

/** The n-th request consumes change set n and answers its Location. */
export const consumed = (n: number): ResolveOutcome => ({
  status: 'ready',
  location: `https://s3.amazonaws.com/set-${n}`,
});

/**
 * An ExportSource that keeps the API's contract for a request: the budget's wait (`gate`), then `beforeSend`
 * (whose error means nothing was sent), then the answer. `sent` counts requests that reached "Localytics".
 */
export class ChangeSetSource implements ExportSource {
  sent = 0;
  resolveCalls = 0;
  downloaded: string[] = [];
  constructor(
    private readonly answer: (n: number) => ResolveOutcome,
    private readonly gate: () => Promise<void> = async () => {},
    private readonly file: () => DownloadedFile = () => ({ body: Readable.from([Buffer.from(changeSetBody)]) }),
  ) {}
  async listAudiences() {
    return [];
  }
  async listProfiles() {
    return [];
  }
  async resolve(_job: SyncJob, options: ResolveOptions = {}): Promise<ResolveOutcome> {
    this.resolveCalls++;
    await this.gate();
    try {
      await options.beforeSend?.();
    } catch (error) {
      return { status: 'failed', error: error as Error, retryable: false };
    }
    this.sent++;
    // Let the other run reach the same point before answering (the request is "in flight").
    await new Promise((resolve) => setTimeout(resolve, 20));
    return this.answer(this.sent);
  }
  async download(location: string): Promise<DownloadedFile> {
    this.downloaded.push(location);
    return this.file();
  }
}
