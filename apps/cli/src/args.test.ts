import { describe, expect, it } from 'vitest';
import { EXIT, parseArgs, type CliCommand } from './args.js';
import { parseLoadtestArgs } from './loadtest.js';

const env = { RESEARCH_API_URL: 'http://127.0.0.1:4000', RESEARCH_API_KEY: 'env-key' };
const envConn = { url: 'http://127.0.0.1:4000', key: 'env-key' };

function command(argv: string[], e: Record<string, string | undefined> = env): CliCommand {
  const r = parseArgs(argv, e);
  if (r.kind !== 'run') throw new Error(`expected a command, got exit ${r.code}: ${r.stderr}`);
  return r.command;
}

describe('research arguments', () => {
  it('parses submit with its flags, joining an unquoted prompt', () => {
    expect(
      command(['submit', 'Research', 'the', 'market', '--follow', '--max-steps', '12', '--timeout', '300', '--json']),
    ).toEqual({
      name: 'submit',
      prompt: 'Research the market',
      follow: true,
      maxSteps: 12,
      timeoutSeconds: 300,
      json: true,
      conn: { url: 'http://127.0.0.1:4000', key: 'env-key' },
    });
    expect(command(['submit', 'hello'])).toMatchObject({ name: 'submit', prompt: 'hello', follow: false, json: false });
    expect(command(['submit', 'hello'])).not.toHaveProperty('maxSteps');
  });

  it('takes repeatable --file local[:path], the task path defaulting to the base name', () => {
    expect(
      command(['submit', 'x', '--file', 'data/prices.csv', '--file', './a:b.csv:inputs/b.csv', '--file', 'r.bin:raw']),
    ).toMatchObject({
      files: [
        { local: 'data/prices.csv', path: 'prices.csv' },
        { local: './a:b.csv', path: 'inputs/b.csv' },
        { local: 'r.bin', path: 'raw' },
      ],
    });
    expect(command(['submit', 'x'])).not.toHaveProperty('files');
    for (const bad of ['data.csv:', 'data.csv:dir/']) {
      const r = parseArgs(['submit', 'x', '--file', bad], env);
      expect(r.kind === 'exit' && r.code).toBe(EXIT.usage);
      expect(r.kind === 'exit' && r.stderr).toMatch(/--file/);
    }
  });

  it('takes --url and --key before or after the command, over the environment', () => {
    expect(command(['--url', 'http://127.0.0.1:5000', 'status', 'abc', '--key', 'flag-key']).conn).toEqual({
      url: 'http://127.0.0.1:5000',
      key: 'flag-key',
    });
    expect(command(['status', 'abc', '--url', 'http://127.0.0.1:5001']).conn).toEqual({
      url: 'http://127.0.0.1:5001',
      key: 'env-key',
    });
  });

  it('defaults the URL and leaves the key unset when nothing gives one', () => {
    expect(command(['cancel', 'abc'], {}).conn).toEqual({ url: 'http://127.0.0.1:3000', key: undefined });
    expect(command(['cancel', 'abc'], { RESEARCH_API_KEY: '  ' }).conn.key).toBeUndefined();
  });

  it('parses follow, status, files and cancel', () => {
    expect(command(['follow', 't1'])).toMatchObject({ name: 'follow', id: 't1', json: false });
    expect(command(['status', 't1', '--json'])).toMatchObject({ name: 'status', id: 't1', json: true });
    expect(command(['files', 't1'])).toMatchObject({ name: 'files', id: 't1' });
    expect(command(['files', 't1', 'report.md', '-o', 'out.md'])).toMatchObject({
      name: 'files',
      id: 't1',
      path: 'report.md',
      output: 'out.md',
    });
    expect(command(['cancel', 't1'])).toMatchObject({ name: 'cancel', id: 't1' });
  });

  it('parses list, download, batch and delete', () => {
    expect(command(['list'])).toEqual({ name: 'list', all: false, json: false, conn: envConn });
    expect(
      command([
        'list',
        '--status',
        'failed',
        '--tag',
        'nightly',
        '--created-after',
        '2026-11-01T00:00:00Z',
        '--created-before',
        '2026-12-01T00:00:00Z',
        '--limit',
        '50',
        '--cursor',
        'abc',
        '--json',
      ]),
    ).toEqual({
      name: 'list',
      status: 'failed',
      tag: 'nightly',
      createdAfter: '2026-11-01T00:00:00Z',
      createdBefore: '2026-12-01T00:00:00Z',
      limit: 50,
      cursor: 'abc',
      all: false,
      json: true,
      conn: envConn,
    });
    expect(parseArgs(['list', '--status', 'sleeping'], env)).toMatchObject({ kind: 'exit', code: EXIT.usage });
    expect(parseArgs(['list', '--all', '--cursor', 'abc'], env)).toMatchObject({ kind: 'exit', code: EXIT.usage });
    expect(command(['download', 't1'])).toEqual({ name: 'download', id: 't1', conn: envConn });
    expect(command(['download', 't1', '-o', '-'])).toMatchObject({ output: '-' });
    expect(command(['batch', 'tasks.jsonl'])).toEqual({
      name: 'batch',
      file: 'tasks.jsonl',
      json: false,
      conn: envConn,
    });
    expect(command(['delete', 't1'])).toEqual({ name: 'delete', id: 't1', conn: envConn });
  });

  it('parses logs with --follow and --json', () => {
    expect(command(['logs', 't1'])).toMatchObject({ name: 'logs', id: 't1', follow: false, json: false });
    expect(command(['logs', 't1', '-f', '--json'])).toMatchObject({ name: 'logs', id: 't1', follow: true, json: true });
    expect(parseArgs(['logs'], env)).toMatchObject({ kind: 'exit', code: EXIT.usage });
  });

  it('refuses bad numbers, missing arguments and unknown commands with exit code 2', () => {
    for (const argv of [
      ['submit', 'x', '--max-steps', 'ten'],
      ['submit', 'x', '--timeout', '0'],
      ['submit'],
      ['status'],
      ['frobnicate'],
      ['files', 't1', '-o', 'x.md'],
    ]) {
      const r = parseArgs(argv, env);
      expect(r.kind, argv.join(' ')).toBe('exit');
      if (r.kind === 'exit') {
        expect(r.code).toBe(EXIT.usage);
        expect(r.stderr).toMatch(/error/i);
      }
    }
    const bad = parseArgs(['submit', 'x', '--max-steps', 'ten'], env);
    expect(bad.kind === 'exit' && bad.stderr).toContain('expected a positive whole number');
  });

  it('prints help with exit 0, and help on no command with exit 2', () => {
    const help = parseArgs(['--help'], env);
    expect(help).toMatchObject({ kind: 'exit', code: 0 });
    expect(help.kind === 'exit' && help.stdout).toContain('RESEARCH_API_KEY');
    const none = parseArgs([], env);
    expect(none).toMatchObject({ kind: 'exit', code: EXIT.usage });
    expect(none.kind === 'exit' && none.stderr).toContain('submit');
  });
});

describe('loadtest arguments', () => {
  it('parses the documented flags', () => {
    const r = parseLoadtestArgs(
      [
        '--url',
        'http://127.0.0.1:3000',
        '--key',
        'k',
        '--tasks',
        '500',
        '--concurrency',
        '20',
        '--steps',
        '3',
        '--json',
        '--report',
        'out',
      ],
      {},
    );
    expect(r).toEqual({
      kind: 'run',
      options: {
        url: 'http://127.0.0.1:3000',
        key: 'k',
        tasks: 500,
        concurrency: 20,
        steps: 3,
        json: true,
        reportDir: 'out',
        pollIntervalMs: 500,
        timeoutSeconds: 600,
      },
    });
  });

  it('defaults to 1-step replay tasks and takes the key from the environment', () => {
    const r = parseLoadtestArgs(['--prompt-file', 'prompts.txt'], { RESEARCH_API_KEY: 'k' });
    expect(r).toMatchObject({
      kind: 'run',
      options: { promptFile: 'prompts.txt', key: 'k', tasks: 100, concurrency: 10, json: false },
    });
    expect(r.kind === 'run' && r.options.steps).toBeUndefined();
    expect(parseLoadtestArgs([], { RESEARCH_API_KEY: 'k' })).toMatchObject({ kind: 'run', options: { steps: 1 } });
  });

  it('refuses --steps with --prompt-file, and a missing key', () => {
    const both = parseLoadtestArgs(['--key', 'k', '--steps', '2', '--prompt-file', 'f'], {});
    expect(both).toMatchObject({ kind: 'exit', code: 2 });
    expect(both.kind === 'exit' && both.stderr).toContain('cannot be used with');
    expect(parseLoadtestArgs(['--tasks', '5'], {})).toMatchObject({ kind: 'exit', code: 3 });
  });

  it('takes --batch N up to 1,000', () => {
    expect(parseLoadtestArgs(['--key', 'k', '--batch', '250'], {})).toMatchObject({
      kind: 'run',
      options: { batch: 250 },
    });
    expect(parseLoadtestArgs(['--key', 'k'], {})).not.toHaveProperty('options.batch');
    const tooBig = parseLoadtestArgs(['--key', 'k', '--batch', '1001'], {});
    expect(tooBig).toMatchObject({ kind: 'exit', code: 2 });
    expect(tooBig.kind === 'exit' && tooBig.stderr).toContain('at most 1000 tasks');
  });
});
