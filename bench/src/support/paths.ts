import { fileURLToPath } from 'node:url';

/** The repository root (bench/dist/support → ../../..). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const WORKER_MAIN = fileURLToPath(new URL('../../../apps/worker/dist/main.js', import.meta.url));
export const API_MAIN = fileURLToPath(new URL('../../../apps/api/dist/main.js', import.meta.url));
/** Preloaded into spawned processes so the memory part can ask them to collect garbage. */
export const GC_HOOK = fileURLToPath(new URL('../gc-hook.js', import.meta.url));

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
