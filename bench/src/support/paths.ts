import { fileURLToPath } from 'node:url';

/** Preloaded into spawned processes so the memory part can ask them to collect garbage. */
export const GC_HOOK = fileURLToPath(new URL('../gc-hook.js', import.meta.url));
