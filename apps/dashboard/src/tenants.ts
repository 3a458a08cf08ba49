import type { Job, Queue } from 'bullmq';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { TaskStore } from '@research/queue';

type AdapterOptions = ConstructorParameters<typeof BullMQAdapter>[1];

/** The tenant a job of the agent queue carries once listed (read from its task's record). */
type WithTenant = Job & { tenant?: string };

/**
 * The board's adapter for the `agent` queue: every task job it lists is named with the tenant
 * that submitted it (`acme · research: …`), read from the task records in one pass per page.
 * Job data stays as stored (the worker's payload has no tenant). A job whose record is gone,
 * or predates tenants, is shown as it is.
 */
export class TaskQueueAdapter extends BullMQAdapter {
  constructor(
    queue: Queue,
    options: AdapterOptions,
    private readonly store: TaskStore,
  ) {
    super(queue, options);
    this.setFormatter('name', (job: { name?: string; tenant?: string }) =>
      job.tenant ? `${job.tenant} · ${job.name ?? ''}` : (job.name ?? ''),
    );
  }

  override async getJobs(...args: Parameters<BullMQAdapter['getJobs']>): Promise<Job[]> {
    const jobs = await super.getJobs(...args);
    await this.addTenants(jobs);
    return jobs;
  }

  override async getJob(id: string): Promise<Job | undefined> {
    const job = await super.getJob(id);
    if (job) await this.addTenants([job]);
    return job;
  }

  private async addTenants(jobs: Job[]): Promise<void> {
    const tenants = await tenantsOf(
      this.store,
      jobs.map((j) => j.id ?? ''),
    );
    for (const job of jobs as WithTenant[]) {
      const tenant = tenants.get(job.id ?? '');
      if (tenant !== undefined) job.tenant = tenant;
    }
  }
}

/** The recorded tenant of each task id (ids without one are left out). */
export async function tenantsOf(store: TaskStore, ids: readonly string[]): Promise<Map<string, string>> {
  const unique = [...new Set(ids.filter((id) => id !== ''))];
  // Sent back to back on one connection: one round trip for the page.
  const found = await Promise.all(unique.map((id) => store.records.tenant(id)));
  return new Map(unique.flatMap((id, i) => (found[i] === undefined ? [] : [[id, found[i]!] as const])));
}
