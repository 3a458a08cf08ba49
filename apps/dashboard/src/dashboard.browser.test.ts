import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { WorkerRegistry, createRedis, stepQueueName, waitForRedis, type Redis } from '@research/queue';
import { createDashboard, type Dashboard } from './server.js';
import { REDIS_URL, deletePrefix, keepOnLoopback, launchChromium, listen, testPrefix } from '@research/testing';
import { runResearchTask, type ResearchTaskFixture } from '../test/research-task.js';

const outDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'test-output');
const redisUrl = REDIS_URL;
const prefix = testPrefix('dash-browser');
const login = { user: 'ops', password: `pw-${randomUUID()}` };

let redis: Redis;
let dashboard: Dashboard;
let base: string;
let stop: (() => Promise<void>) | undefined;
let task: ResearchTaskFixture | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  // First, so a machine without Chromium fails at once with how to install it.
  browser = await launchChromium();
  redis = createRedis(redisUrl, 'worker');
  await waitForRedis(redis, redisUrl);
  dashboard = createDashboard({ connection: redis, prefix, login, workerStaleMs: 15_000, refreshIntervalMs: 500 });
  ({ url: base, close: stop } = await listen(dashboard.app));
  task = await runResearchTask(redis, prefix, { taskId: `task-${randomUUID().slice(0, 8)}`, workerId: 'worker-a' });
  // The worker announces itself as the real one does, so the workers page has it.
  await new WorkerRegistry(redis, prefix).beat(
    {
      id: task.workerId,
      host: 'test-host',
      pid: process.pid,
      startedAt: new Date().toISOString(),
      containerId: 'c0ffee0123456789abcdef',
      containerName: 'research-sandbox-worker-a',
      image: 'research-sandbox:latest',
      running: [],
    },
    60_000,
  );
  await dashboard.refreshQueues();
});

afterAll(async () => {
  await browser?.close();
  await stop?.();
  await dashboard?.close();
  await task?.close();
  if (redis) {
    await deletePrefix(redis, prefix);
    await redis.quit();
  }
});

describe('the board in a browser', () => {
  it('refuses a browser without the login', async () => {
    for (const httpCredentials of [undefined, { username: login.user, password: 'wrong' }]) {
      const context = await browser!.newContext(httpCredentials ? { httpCredentials } : {});
      await keepOnLoopback(context);
      try {
        for (const route of ['/queue/agent', '/api/queues', '/workers']) {
          const res = await context.request.get(`${base}${route}`);
          expect(res.status()).toBe(401);
          expect(res.headers()['www-authenticate']).toMatch(/^Basic /);
        }
        // A page load gets the challenge and, with no (right) login to give, does not load.
        const page = await context.newPage();
        const loaded = await page.goto(`${base}/`).then(
          (r) => r?.status(),
          (err: Error) => err.message,
        );
        expect(loaded === 401 || /AUTH/.test(String(loaded))).toBe(true);
      } finally {
        await context.close();
      }
    }
  });

  it('logs in, opens the agent queue and a completed research task with its progress, log and steps', async () => {
    const fixture = task!;
    mkdirSync(outDir, { recursive: true });
    const context = await browser!.newContext({
      httpCredentials: { username: login.user, password: login.password },
      // Tall enough for the whole job page: a full-page screenshot that resizes the viewport re-renders
      // the board, which resets the selected job tab.
      viewport: { width: 1440, height: 1500 },
    });
    const blocked = await keepOnLoopback(context);
    const page = await context.newPage();
    // The board runs under the dashboard's Content-Security-Policy: anything it refused shows here.
    const refusedByPolicy: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text()) && !/fonts\.googleapis\.com/.test(m.text()))
        refusedByPolicy.push(m.text());
    });
    try {
      await page.goto(`${base}/`);
      // The worker's step queue was discovered next to the agent queue.
      await expect
        .poll(() => page.getByRole('link', { name: stepQueueName(fixture.workerId), exact: true }).count())
        .toBeGreaterThan(0);

      // Our workers page is linked from the board's header menu.
      expect(await page.locator('#__UI_CONFIG__').textContent()).toContain(
        '"miscLinks":[{"text":"Workers","url":"workers"}]',
      );

      await page.getByRole('link', { name: 'agent', exact: true }).first().click();
      await page.waitForURL(/\/queue\/agent/);
      await page
        .getByRole('link', { name: /completed/i })
        .first()
        .click();
      await page.waitForURL(/status=completed/);

      const jobLink = page.getByRole('link', { name: fixture.jobId, exact: true });
      await jobLink.waitFor();
      await jobLink.click();
      await page.waitForURL(new RegExp(`/queue/agent/${fixture.jobId}`));

      // Readable name, and the log: one line per step with action, exit code and duration.
      await page.getByText('research: Research current market conditions').first().waitFor();
      for (const step of fixture.steps) await page.getByText(step.logLine, { exact: true }).waitFor();
      expect(fixture.steps.map((s) => s.logLine)).toContainEqual(
        expect.stringMatching(/^step 3 · execute-command · exit 0 · \d+ ms$/),
      );

      // Progress: the ring at 100% and, in the Progress tab, step of maxSteps and phase.
      await page.getByText('100%').first().waitFor();
      await page.getByRole('tab', { name: 'Progress' }).click();
      await page
        .getByText(/step 6 of 12 · done/)
        .first()
        .waitFor();

      // The steps as children in the flow tree, with their readable names, all completed.
      const flow = page.locator('.react-flow');
      await flow.waitFor();
      for (const step of fixture.steps) {
        await flow.locator(`[aria-label^="${step.name.replace(/"/g, '\\"')}, completed"]`).waitFor();
      }
      await flow.getByText('6 done').waitFor();

      // Secrets in metadata never reach the browser.
      expect(await page.content()).not.toContain('sk-test-should-never-show');

      await page.getByRole('tab', { name: 'Logs' }).click();
      await page.getByText(fixture.steps[0]!.logLine, { exact: true }).waitFor();
      // No hover or focus highlight left on the tabs in the picture.
      await page.mouse.move(5, 5);
      await page.evaluate('document.activeElement && document.activeElement.blur()');
      await page.screenshot({ path: path.join(outDir, 'completed-task.png'), fullPage: true });

      // A step opened from the tree: its command output is shown cut at 2 KB with a note.
      await flow.locator('[aria-label^="step 3 · execute-command"]').click();
      await page.getByRole('link', { name: 'Open this job' }).click();
      await page.waitForURL(new RegExp(`/queue/${stepQueueName(fixture.workerId)}/${fixture.jobId}-2`));
      // The tabs settle once the job's status has loaded (the Logs tab, our default, is shown).
      await page.getByText('No logs available').waitFor();
      await page.getByRole('tab', { name: 'Data' }).click();
      await page
        .getByText(/truncated: [\d,]+ more bytes/)
        .first()
        .waitFor();
      await expect.poll(() => page.getByRole('tab', { name: 'Data' }).getAttribute('aria-selected')).toBe('true');
      await page.screenshot({ path: path.join(outDir, 'step-output.png'), fullPage: true });

      // The header menu links to the workers page, which lists this worker and its container.
      await page.goto(`${base}/`);
      await page.locator('header button').last().click();
      await page.getByText('Workers', { exact: true }).click();
      await page.waitForURL(/\/workers$/);
      await page.getByRole('heading', { name: 'Workers' }).waitFor();
      await page.getByText(fixture.workerId, { exact: true }).waitFor();
      await page.getByText('research-sandbox-worker-a').waitFor();
      await page.screenshot({ path: path.join(outDir, 'workers.png'), fullPage: true });

      // Nothing left the machine: the only off-host requests were the board's web fonts, blocked.
      expect(blocked.every((u) => u.startsWith('https://fonts.googleapis.com/'))).toBe(true);
      // The board and the workers page ran whole under the policy (its fonts are the one thing it refuses).
      expect(refusedByPolicy).toEqual([]);
    } catch (err) {
      await page
        .screenshot({ path: path.join(outDir, 'completed-task-failure.png'), fullPage: true })
        .catch(() => undefined);
      writeFileSync(path.join(outDir, 'completed-task-failure.html'), await page.content().catch(() => ''));
      throw err;
    } finally {
      await context.close();
    }
  });
});
