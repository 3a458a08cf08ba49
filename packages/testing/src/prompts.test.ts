import { describe, expect, it } from 'vitest';
import { parseToolCalls } from '@research/agent';
import { block, replayPrompt } from './prompts.js';

describe('test prompts', () => {
  it('replayPrompt is read back by the agent’s parser as those commands, in order, quotes and backslashes kept', () => {
    const commands = ['echo "quoted" && printf \'a\\\\nb\'', 'sleep 0.2', 'cat "C:\\\\dir\\\\file"'];
    const { calls, errors } = parseToolCalls(replayPrompt(commands));
    expect(errors).toEqual([]);
    expect(calls.map((c) => c.args)).toEqual(commands.map((command) => ({ action: 'execute-command', command })));
  });

  it('block writes what the parser must refuse as it is, so the refusal is what a test sees', () => {
    const { calls, errors } = parseToolCalls(
      [block({ action: 'format-disk', target: '/' }), block({ action: 'read-file', filePath: 'a.md' })].join('\n'),
    );
    expect(calls.map((c) => c.args)).toEqual([{ action: 'read-file', filePath: 'a.md' }]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/format-disk/);
  });
});
