import type { Env, Logger } from '@research/config';
import { isSandboxAction, type StepOutcome, type WorkerAction } from '@research/contracts';
import type { WebBudgets } from '@research/queue';
import type { Sandbox } from '@research/sandbox';
import {
  createSearchProvider,
  EgressPolicy,
  fetchPage,
  type SearchProvider,
  TaskWebBudget,
  WebError,
} from '@research/web';
import type { ActionRunner, StepAttempt } from './action-runner.js';

export type WebEnv = Pick<
  Env,
  | 'WEB_SEARCH_PROVIDER'
  | 'WEB_SEARCH_URL'
  | 'WEB_SEARCH_API_KEY'
  | 'WEB_FETCH_MAX_BYTES'
  | 'WEB_FETCH_TIMEOUT_MS'
  | 'WEB_MAX_FETCHES_PER_TASK'
  | 'WEB_MAX_BYTES_PER_TASK'
  | 'EGRESS_ALLOW_HOSTS'
  | 'EGRESS_DENY_HOSTS'
>;

export interface WebStepsOptions {
  env: WebEnv;
  /** Where a fetched page is saved (through create-file, as the task's own files are). */
  sandbox: Sandbox;
  /** The tasks' budget counters (in Redis, shared by every worker). */
  budgets: WebBudgets;
  logger: Logger;
  /** Default: the policy the environment configures. */
  policy?: EgressPolicy;
}

/**
 * The actions that run in the worker process (`runsIn: 'worker'`): web-search and web-fetch,
 * every request through the egress policy. The sandbox keeps no network; a fetched page reaches
 * it as files written through the sandbox (`sources/NNN-<slug>.<ext>` and its `.meta.json`).
 *
 * What the model sees and what retries: a refusal (`egress_denied`, a 404, a type that is not
 * fetched, a key the provider refuses) is the step's outcome at once; a failure that may clear
 * up (a 429 or 5xx, a timeout, a connection reset) throws, so the step job retries with its
 * backoff, and on its last attempt becomes the outcome too — a site that is down is news for
 * the model, not a reason to fail the research.
 */
export class WebSteps implements ActionRunner {
  /** Undefined with WEB_SEARCH_PROVIDER=none: the tools are not offered, and a web step is refused. */
  readonly search: SearchProvider | undefined;
  readonly policy: EgressPolicy;
  private readonly log: Logger;

  constructor(private readonly options: WebStepsOptions) {
    this.log = options.logger;
    this.policy =
      options.policy ??
      EgressPolicy.fromEnv(options.env, {
        onConnect: (d) =>
          this.log.debug({ host: d.hostname, address: d.address, port: d.port, allowedBy: d.allowedBy }, 'egress'),
      });
    this.search = createSearchProvider(options.env, this.policy);
  }

  /** Whether the web tools are offered to the model (a search provider is configured). */
  get enabled(): boolean {
    return this.search !== undefined;
  }

  async run(attempt: StepAttempt): Promise<StepOutcome> {
    const { action } = attempt;
    if (isSandboxAction(action)) throw new TypeError(`${action.action} runs in the sandbox, not in the worker`);
    if (!this.search)
      return refused(
        'web_disabled',
        `${action.action} is not available: web access is off on this worker (WEB_SEARCH_PROVIDER=none)`,
      );
    try {
      return await this.runWeb(this.search, action, attempt);
    } catch (err) {
      if (!(err instanceof WebError)) throw err;
      if (!err.retryable) return refused(err.code, err.message);
      if (attempt.lastAttempt) {
        this.log.info(
          { taskId: attempt.taskId, step: attempt.stepIndex, code: err.code },
          'web step failed on its last attempt; the model gets the error',
        );
        return refused(err.code, `${err.message} (gave up after the step's last attempt)`);
      }
      throw err;
    }
  }

  private async runWeb(search: SearchProvider, action: WorkerAction, attempt: StepAttempt): Promise<StepOutcome> {
    const { signal } = attempt;
    switch (action.action) {
      case 'web-search':
        return {
          ok: true,
          result: await search.search(action.query, {
            ...(action.maxResults !== undefined ? { maxResults: action.maxResults } : {}),
            ...(signal ? { signal } : {}),
          }),
        };
      case 'web-fetch':
        return this.fetch(action.url, attempt);
    }
  }

  private async fetch(url: string, { taskId, stepIndex, signal }: StepAttempt): Promise<StepOutcome> {
    const { env, sandbox, budgets } = this.options;
    const budget = new TaskWebBudget(budgets.counter(taskId), taskId, {
      maxFetches: env.WEB_MAX_FETCHES_PER_TASK,
      maxBytes: env.WEB_MAX_BYTES_PER_TASK,
    });
    const page = await fetchPage(url, {
      policy: this.policy,
      budget,
      // The step's number: unique within the task, and the same name when the step is retried.
      index: stepIndex + 1,
      maxBytes: env.WEB_FETCH_MAX_BYTES,
      timeoutMs: env.WEB_FETCH_TIMEOUT_MS,
      ...(signal ? { signal } : {}),
    });
    for (const file of page.files) {
      const saved = await sandbox.run(
        taskId,
        { action: 'create-file', filePath: file.path, content: file.content },
        signal ? { signal } : {},
      );
      if (!saved.ok)
        return refused(
          saved.error.code,
          `fetched ${page.result.url} but could not save it as ${file.path}: ${saved.error.message}`,
        );
    }
    return { ok: true, result: page.result };
  }
}

function refused(code: string, message: string): StepOutcome {
  return { ok: false, error: { code, message } };
}
