import { describe, expect, it } from 'vitest';
import type { LiveOutput } from './protocol.js';
import { cmd, runCommand, useSandbox } from './test-helpers.js';

describe('live output of a running command', () => {
  const env = useSandbox({ liveOutputMaxBytes: 2_000 });
  const sb = env.sandbox;
  const task = 'live';

  it('reaches the caller while the command runs, and the outcome still has all of it', async () => {
    const seen: LiveOutput[] = [];
    let released: Promise<unknown> | undefined;
    // The command waits for a file that is only written once its first line has been seen here:
    // without live output it could only end by its timeout.
    const outcome = await sb.run(
      task,
      {
        action: 'execute-command',
        command: 'echo ready; echo warn >&2; while [ ! -f go ]; do sleep 0.05; done; echo done',
        timeoutMs: 30_000,
      },
      {
        onOutput: (o) => {
          seen.push(o);
          if (!released && o.stream === 'stdout' && o.chunk.includes('ready'))
            released = sb.run(task, { action: 'create-file', filePath: 'go', content: '' });
        },
      },
    );
    await released;
    const r = cmd(outcome);
    expect(r).toMatchObject({ exitCode: 0, timedOut: false, stdout: 'ready\ndone\n', stderr: 'warn\n' });
    const streamed = (stream: LiveOutput['stream']) =>
      seen
        .filter((o) => o.stream === stream)
        .map((o) => o.chunk)
        .join('');
    expect(streamed('stdout')).toBe('ready\ndone\n');
    expect(streamed('stderr')).toBe('warn\n');
  });

  it('coalesces a chatty command into a few chunks and stops at the cap, with the outcome whole', async () => {
    const seen: LiveOutput[] = [];
    // 500 writes of 40 bytes: 20,000 bytes, ten times the cap of this sandbox.
    const command = 'for i in $(seq 1 500); do printf "%039d\\n" $i; done';
    const r = cmd(await sb.run(task, { action: 'execute-command', command }, { onOutput: (o) => seen.push(o) }));
    expect(r.stdout.length).toBe(20_000);
    expect(seen.length).toBeLessThan(20);
    const last = seen.at(-1);
    expect(last?.truncated).toBe(true);
    expect(last?.chunk).toContain('live output stops at 2000 bytes');
    const text = seen
      .filter((o) => !o.truncated)
      .map((o) => o.chunk)
      .join('');
    expect(text.length).toBe(2_000);
    expect(r.stdout.startsWith(text)).toBe(true);
  });

  it('sends nothing when no one asked', async () => {
    const r = await runCommand(sb, task, 'echo quiet');
    expect(r.stdout).toBe('quiet\n');
  });
});
