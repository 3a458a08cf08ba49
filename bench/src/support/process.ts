import { readFile } from 'node:fs/promises';
import type { Spawned } from '@research/testing';

/** Resident set size from /proc (what the kernel charges the process), in MiB. */
export async function rssMb(p: Spawned): Promise<number> {
  const status = await readFile(`/proc/${p.pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for ${p.name}`);
  return Number(kb) / 1024;
}

/** Asks the process (through the preloaded gc hook, see `nodeArgs` in system.ts) to collect garbage. */
export function collectGarbage(p: Spawned): void {
  p.child.kill('SIGUSR2');
}
