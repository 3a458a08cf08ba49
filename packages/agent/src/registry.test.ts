import { describe, expect, it } from 'vitest';
import type { AgentLogger } from './logger.js';
import { ToolRegistry, createDefaultRegistry } from './registry.js';
import { daytonaExecuteTool } from './tools/daytona-execute.js';
import type { ToolDefinition } from './tools/types.js';

function recordingLogger(): AgentLogger & { warnings: { obj: unknown; msg: string | undefined }[] } {
  const warnings: { obj: unknown; msg: string | undefined }[] = [];
  const noop = (): void => {};
  return { warnings, debug: noop, info: noop, error: noop, warn: (obj, msg) => warnings.push({ obj, msg }) };
}

describe('ToolRegistry', () => {
  it('advertises only daytona-execute, as one object-typed function with the four actions', () => {
    const registry = createDefaultRegistry();
    expect(registry.names().sort()).toEqual(['daytona-execute', 'execute-command', 'file-creation']);
    expect(registry.advertised().map((t) => t.name)).toEqual(['daytona-execute']);
    const specs = registry.functionSpecs();
    expect(specs).toHaveLength(1);
    const params = specs[0]?.function.parameters as {
      type: string;
      properties: Record<string, { enum?: string[] }>;
      required: string[];
    };
    expect(specs[0]?.function.name).toBe('daytona-execute');
    expect(params.type).toBe('object');
    expect(params.properties.action?.enum).toEqual(['create-file', 'execute-command', 'read-file', 'list-files']);
    expect(Object.keys(params.properties).sort()).toEqual([
      'action',
      'command',
      'content',
      'cwd',
      'filePath',
      'path',
      'timeoutMs',
    ]);
    expect(params.required).toEqual(['action']);
  });

  it('resolves daytona-execute calls and validates them', () => {
    const registry = createDefaultRegistry();
    expect(registry.resolve('daytona-execute', { action: 'execute-command', command: 'ls', timeoutMs: 1000 })).toEqual({
      ok: true,
      args: { action: 'execute-command', command: 'ls', timeoutMs: 1000 },
    });
    const bad = registry.resolve('daytona-execute', { action: 'read-file' });
    expect(bad).toEqual({ ok: false, error: 'daytona-execute: read-file: missing parameter "filePath"' });
  });

  it('translates the deprecated file-creation alias into create-file and logs a deprecation warning', () => {
    const logger = recordingLogger();
    const registry = createDefaultRegistry({ logger });
    const result = registry.resolve('file-creation', { path: 'notes.md', content: 'hello' });
    expect(result).toEqual({
      ok: true,
      args: { action: 'create-file', filePath: 'notes.md', content: 'hello' },
      deprecatedTool: 'file-creation',
    });
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]?.msg).toMatch(/deprecated tool "file-creation".*daytona-execute create-file/);
    expect(logger.warnings[0]?.obj).toMatchObject({ tool: 'file-creation', replacement: 'daytona-execute' });
  });

  it('translates the deprecated execute-command alias into a sandboxed execute-command', () => {
    const logger = recordingLogger();
    const registry = createDefaultRegistry({ logger });
    expect(
      registry.resolve('execute-command', { command: 'python3 a.py', timeout: '3000', workingDirectory: 'sub' }),
    ).toEqual({
      ok: true,
      args: { action: 'execute-command', command: 'python3 a.py', timeoutMs: 3000, cwd: 'sub' },
      deprecatedTool: 'execute-command',
    });
    expect(logger.warnings[0]?.msg).toMatch(/deprecated tool "execute-command"/);
  });

  it('reports bad calls of the deprecated aliases without logging them as used', () => {
    const logger = recordingLogger();
    const registry = createDefaultRegistry({ logger });
    expect(registry.resolve('execute-command', {})).toEqual({
      ok: false,
      error: 'execute-command: missing parameter "command"',
    });
    expect(logger.warnings).toEqual([]);
  });

  it('refuses unknown tools, naming the available ones', () => {
    expect(createDefaultRegistry().resolve('web-search', { q: 'x' })).toEqual({
      ok: false,
      error: 'unknown tool "web-search"; available: daytona-execute',
    });
  });

  it('takes a new tool from one definition, and refuses duplicates', () => {
    const listRoot: ToolDefinition = {
      name: 'list-workspace',
      description: 'Lists the task directory.',
      parameters: { type: 'object', properties: {} },
      toAction: () => ({ ok: true, action: { action: 'list-files', path: '.' } }),
    };
    const registry = new ToolRegistry([daytonaExecuteTool, listRoot]);
    expect(registry.advertised().map((t) => t.name)).toEqual(['daytona-execute', 'list-workspace']);
    expect(registry.resolve('list-workspace', {})).toEqual({ ok: true, args: { action: 'list-files', path: '.' } });
    expect(() => registry.register(listRoot)).toThrow(/already registered/);
  });
});
