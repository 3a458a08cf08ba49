import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

beforeAll(() => {
  // The compiled entry point, as `npm start` runs it; built when missing.
  if (!existsSync(MAIN)) {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    });
  }
});

function start(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const { API_KEYS: _keys, API_KEYS_FILE: _file, ...rest } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN], {
      env: { ...rest, PORT: '3998', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

describe('main.js refuses weak or broken keys at start', () => {
  it('a key shorter than 16 characters: exits naming API_KEYS, never printing the key', async () => {
    const { code, stderr } = await start({ API_KEYS: 'acme:0123456789abcdef,beta:short-pw-9' });
    expect(code).toBe(1);
    expect(stderr).toContain('API_KEYS: API_KEYS entry 2 (tenant beta): a key must be at least 16 characters');
    expect(stderr).not.toContain('short-pw-9');
    expect(stderr).not.toContain('0123456789abcdef');
  });

  it('an API_KEYS_FILE that cannot be read: exits naming API_KEYS_FILE', async () => {
    const { code, stderr } = await start({ API_KEYS_FILE: '/nonexistent/keys' });
    expect(code).toBe(1);
    expect(stderr).toContain('API_KEYS_FILE: cannot read /nonexistent/keys');
  });
});
