import type { JobLedger, LedgerSnapshot } from '../core/job-ledger.js';

interface Entry {
  readonly state: 'queued' | 'parked';
  readonly until: number;
  readonly claimId?: string;
}

/** The `JobLedger` in one process's memory (tests, and one-process runs that have a queue of their own). */
export class MemoryJobLedger implements JobLedger {
  readonly location = 'memory';
  private readonly entries = new Map<string, Entry>();
  private backlog: { from: number; until: number } | undefined;

  async read(now: number): Promise<LedgerSnapshot> {
    const queued = new Set<string>();
    const parked = new Set<string>();
    for (const [id, entry] of this.entries) {
      if (entry.until <= now) continue;
      (entry.state === 'queued' ? queued : parked).add(id);
    }
    const backlogFrom = this.backlog && this.backlog.until > now ? this.backlog.from : undefined;
    return { queued, parked, backlogFrom };
  }

  async claim(id: string, until: number, now: number, claimId: string): Promise<boolean> {
    const entry = this.entries.get(id);
    if (entry && entry.until > now) return false;
    this.entries.set(id, { state: 'queued', until, claimId });
    return true;
  }

  async keep(id: string, until: number, claimId: string | undefined): Promise<void> {
    this.entries.set(id, { state: 'queued', until, claimId });
  }

  async rest(id: string, until: number): Promise<void> {
    this.entries.set(id, { state: 'parked', until });
  }

  async release(id: string, claimId: string | undefined): Promise<void> {
    if (this.entries.get(id)?.claimId === claimId) this.entries.delete(id);
  }

  async markBacklog(from: number, until: number): Promise<void> {
    this.backlog = { from, until };
  }

  async clearBacklog(from: number): Promise<void> {
    if (this.backlog?.from === from) this.backlog = undefined;
  }
}
