import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { System, keepOnLoopback, launchChromium, requireServices } from '@research/testing';

const OUT = fileURLToPath(new URL('../test-output/', import.meta.url));
const login = { username: 'admin', password: `pw-${Math.random().toString(36).slice(2)}` };

let sys: System;
let browser: Browser | undefined;
let dashboard = '';
let taskId = '';

beforeAll(async () => {
  await requireServices();
  // Before the system starts, so a machine without Chromium fails at once with how to install it.
  browser = await launchChromium();
  sys = new System();
  await sys.startApi();
  await sys.startWorker(`dash-${sys.id}`);
  await sys.startDashboard({ DASHBOARD_USER: login.username, DASHBOARD_PASSWORD: login.password });
  dashboard = sys.dashboardUrl;
  taskId = await sys.submit({ prompt: 'Research current market conditions and investment opportunities' });
  expect((await sys.waitFinal(taskId)).status).toBe('completed');
});

afterAll(async () => {
  await browser?.close();
  await sys?.close();
});

describe('the dashboard over a real system', () => {
  it('refuses requests without the login', async () => {
    for (const path of ['/', '/api/queues', '/workers']) expect((await fetch(`${dashboard}${path}`)).status).toBe(401);
  });

  it('shows a completed research task run by a real worker: progress, one log line per step, child steps', async () => {
    mkdirSync(OUT, { recursive: true });
    const context = await browser!.newContext({ httpCredentials: login, viewport: { width: 1440, height: 1500 } });
    // The board links web fonts; nothing may leave the machine.
    await keepOnLoopback(context);
    const page = await context.newPage();
    const view = await sys.view(taskId);
    await page.goto(`${dashboard}/queue/agent/${taskId}`);
    await page.getByText('research: Research current market conditions').first().waitFor();
    await page.getByRole('tab', { name: 'Logs' }).click();
    for (const s of view.steps) {
      const line = new RegExp(
        `^step ${s.index + 1} · ${s.action}${s.action === 'execute-command' ? ' · exit 0' : ''} · \\d+ ms$`,
      );
      await page.getByText(line).first().waitFor();
    }
    await page.getByText('100%').first().waitFor();
    const flow = page.locator('.react-flow');
    await flow.getByText(`${view.steps.length} done`).waitFor();
    await flow.locator('[aria-label^="step 3 · execute-command · python3 analysis.py"]').waitFor();
    await page.getByRole('tab', { name: 'Logs' }).click();
    await page.screenshot({ path: `${OUT}dashboard-real-task.png`, fullPage: true });
    await context.close();
  });
});
