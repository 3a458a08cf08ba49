import { fileURLToPath } from 'node:url';

const root = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));

/** The built entry points the kit starts (packages/testing/dist → the repository root). Run `npm run build` first. */
export const MAINS = {
  api: root('apps/api/dist/main.js'),
  worker: root('apps/worker/dist/main.js'),
  dashboard: root('apps/dashboard/dist/main.js'),
} as const;
