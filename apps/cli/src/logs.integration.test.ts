import { describe, expect, it } from 'vitest';
import { EXIT } from './args.js';
import { cli, playFinish, playStep, useApi } from '../test/api.js';

const api = useApi('clilogs');

/** The lines of `research logs` without their time column. */
const untimed = (stdout: string) =>
  stdout
    .trimEnd()
    .split('\n')
    .map((l) => l.replace(/^\d\d:\d\d:\d\d\.\d\d\d /, ''));

describe('research logs', () => {
  it("prints a finished task's events in order, with the command's output under its result", async () => {
    const { id } = await api.client.submit({ prompt: 'logs of a finished task' });
    await api.store.lifecycle.start(id, { workerId: 'worker-logs' });
    await playStep(api.store, id, 0, 'python3 analysis.py');
    await playFinish(api.store, id, 'all done');
    const { code, stdout, stderr } = await cli(['logs', id], api.env).done;
    expect(stderr).toBe('');
    expect(code).toBe(EXIT.ok);
    expect(untimed(stdout)).toEqual([
      'status            queued',
      'status            running on worker-logs',
      'turn              turn 1',
      'tool_call         step 1 execute-command python3 analysis.py',
      'tool_result       step 1 execute-command exit 0 (5 ms)',
      '             | ok',
      'finished          answer: all done',
      'status            completed 2 files',
    ]);
  });

  it('without --follow prints the events so far of a running task and returns', async () => {
    const { id } = await api.client.submit({ prompt: 'logs of a running task' });
    await api.store.lifecycle.start(id, { workerId: 'worker-logs' });
    await playStep(api.store, id, 0, 'echo one');
    const { code, stdout } = await cli(['logs', id], api.env).done;
    expect(code).toBe(EXIT.ok);
    const lines = untimed(stdout);
    expect(lines[0]).toBe('status            queued');
    expect(lines).toContain('tool_call         step 1 execute-command echo one');
    expect(lines.at(-1)).toBe('             | ok');
    expect((await api.client.get(id)).status).toBe('running');
  });

  it('--follow keeps printing live events until the task ends, each once', async () => {
    const { id } = await api.client.submit({ prompt: 'logs --follow' });
    await api.store.lifecycle.start(id, { workerId: 'worker-logs' });
    const run = cli(['logs', id, '--follow'], api.env);
    await run.waitFor(/running on worker-logs/);
    await playStep(api.store, id, 0, 'echo live-one');
    await run.waitFor(/execute-command echo live-one/);
    await playStep(api.store, id, 1, 'echo live-two');
    await playFinish(api.store, id, 'two steps');
    const { code, stdout } = await run.done;
    expect(code).toBe(EXIT.ok);
    const lines = untimed(stdout);
    expect(lines.filter((l) => l.includes('step 1 execute-command echo live-one'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('step 2 execute-command echo live-two'))).toHaveLength(1);
    expect(lines.at(-1)).toBe('status            completed 2 files');
  });

  it('--json prints one {id, event} per line, the stored events exactly', async () => {
    const { id } = await api.client.submit({ prompt: 'logs --json' });
    await api.store.lifecycle.start(id, { workerId: 'worker-logs' });
    await playStep(api.store, id, 0, 'echo json');
    await playFinish(api.store, id, 'json done');
    const { code, stdout } = await cli(['logs', id, '--json'], api.env).done;
    expect(code).toBe(EXIT.ok);
    const printed = stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; event: unknown });
    const stored = await api.store.events.read(id);
    expect(printed).toEqual(stored.map((e) => ({ id: e.id, event: e.event })));
  });

  it('an unknown task is exit 4 with one line naming it', async () => {
    const { code, stdout, stderr } = await cli(['logs', 'no-such-task'], api.env).done;
    expect(code).toBe(EXIT.notFound);
    expect(stdout).toBe('');
    expect(stderr).toBe('research: task no-such-task not found (404): no job no-such-task\n');
  });
});
