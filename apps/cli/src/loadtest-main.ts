#!/usr/bin/env node
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exitWith } from './args.js';
import { describeError } from './commands.js';
import { ResearchClient } from '@research/client';
import { formatResult, loadPrompts, parseLoadtestArgs, preflight, runLoadtest } from './loadtest.js';
import { renderReport } from './report-html.js';

const parsed = parseLoadtestArgs(process.argv.slice(2));
if (parsed.kind === 'exit') exitWith(parsed);
else {
  const options = parsed.options;
  try {
    const ready = await loadPrompts(options);
    const client = new ResearchClient({ baseUrl: options.url, apiKey: options.key });
    await preflight(client);
    const result = await runLoadtest(ready, {
      client,
      onProgress: (p) => {
        process.stderr.write(
          `loadtest: ${p.elapsedSec.toFixed(0)} s · submitted ${p.submitted}/${p.tasks} · finished ${p.finished}\n`,
        );
      },
    });
    if (options.reportDir) {
      await mkdir(options.reportDir, { recursive: true });
      await writeFile(join(options.reportDir, 'loadtest.json'), `${JSON.stringify(result, null, 2)}\n`);
      await writeFile(join(options.reportDir, 'report.html'), renderReport(result));
    }
    process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : `${formatResult(result)}\n`);
    if (options.reportDir && !options.json) process.stdout.write(`report: ${join(options.reportDir, 'report.html')}\n`);
    // Nothing submitted at all is a failed run; failed or lost tasks are findings, reported above.
    process.exitCode = result.submitted === 0 ? 1 : 0;
  } catch (err) {
    const { message, code } = describeError(err, { conn: { url: options.url, key: options.key } });
    process.stderr.write(`loadtest: ${message}\n`);
    process.exitCode = code;
  }
}
