import { describe, expect, it } from 'vitest';
import { buildSystemPrompt } from './prompt.js';
import { SANDBOX_EXAMPLE_ACTIONS } from './testing/prompt-examples.js';
import { parseToolCalls } from './xml.js';

describe('buildSystemPrompt', () => {
  it('xml: states the sandbox rule and the todo.md workflow, with examples that parse', () => {
    const prompt = buildSystemPrompt({ format: 'xml', maxSteps: 12 });
    expect(prompt).toMatch(/goes through the\s+`daytona-execute` tool/);
    expect(prompt).toMatch(/First create todo\.md/);
    expect(prompt).toMatch(/Tick an item .* only when a tool result proves it is done/);
    expect(prompt).toMatch(/at most 12 tool calls/);
    const examples = parseToolCalls(prompt);
    expect(examples.errors).toEqual([]);
    expect(examples.calls.map((c) => c.args.action)).toEqual(SANDBOX_EXAMPLE_ACTIONS);
  });

  it('native: describes function calling with JSON examples and no XML blocks to imitate', () => {
    const prompt = buildSystemPrompt({ format: 'native' });
    expect(prompt).toContain('daytona-execute({"action":"create-file","filePath":"todo.md"');
    expect(parseToolCalls(prompt).calls).toEqual([]);
    expect(prompt).not.toMatch(/file-creation|execute-command tool/);
  });
});
