import type { Logger } from '@research/config';
import type { Redis, WorkspaceCleanups } from '@research/queue';
import type { Sandbox } from '@research/sandbox';

export interface WorkspaceCleanerOptions {
  workerId: string;
  cleanups: WorkspaceCleanups;
  sandbox: Sandbox;
  logger: Logger;
  /** How often requests are looked for without an announcement (one missed while Redis was away). Default: 60_000. */
  everyMs?: number;
}

/**
 * Removes the workspaces of deleted tasks that ran here last: the API asks through
 * WorkspaceCleanups, because only this worker's sandbox holds their files. Requests left while
 * the worker was down are taken at start; new ones as they are announced; a removal that failed
 * is asked again and retried at the next look.
 */
export class WorkspaceCleaner {
  private draining: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly o: WorkspaceCleanerOptions) {}

  async start(subscriber: Redis): Promise<void> {
    await this.o.cleanups.subscribe(subscriber, this.o.workerId, () => this.drain());
    this.timer = setInterval(() => this.drain(), this.o.everyMs ?? 60_000).unref();
    this.drain();
  }

  /** Takes and carries out every pending request; a call while one runs makes it look again after. */
  drain(): void {
    if (this.closed) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.run()
      .catch((err: unknown) => this.o.logger.warn({ err }, 'could not take workspace removals'))
      .finally(() => {
        this.draining = undefined;
        if (this.again) {
          this.again = false;
          this.drain();
        }
      });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.draining;
  }

  private async run(): Promise<void> {
    const { workerId, cleanups, sandbox, logger } = this.o;
    const failed: string[] = [];
    for (;;) {
      const ids = this.closed ? [] : await cleanups.take(workerId, 20);
      if (ids.length === 0) break;
      for (const taskId of ids) {
        try {
          const removed = await sandbox.removeWorkspace(taskId);
          logger.info({ taskId, removed }, "removed a deleted task's workspace");
        } catch (err) {
          logger.warn({ err, taskId }, "could not remove a deleted task's workspace; trying again later");
          failed.push(taskId);
        }
      }
    }
    if (failed.length > 0) await cleanups.keep(workerId, failed);
  }
}
