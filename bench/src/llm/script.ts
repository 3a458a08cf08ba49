import { fileURLToPath } from 'node:url';

/** The per-task step mix the bench's model plays: K = 5 calls touching all four actions, then the answer. */
export const STEP_MIX: readonly Record<string, string>[] = [
  { action: 'create-file', filePath: 'todo.md', content: '# Plan\n- [ ] gather data\n- [ ] write report\n' },
  { action: 'execute-command', command: 'true' },
  { action: 'read-file', filePath: 'todo.md' },
  { action: 'list-files', path: '.' },
  { action: 'create-file', filePath: 'report.md', content: '# Report\n\nFindings: the market moved sideways.\n' },
];

/** The model server's script (run by `node`, see model-server.ts). */
export const MODEL_SERVER = fileURLToPath(new URL('./model-server.js', import.meta.url));
