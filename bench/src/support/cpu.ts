import { readdir, readFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import type { Redis } from '@research/queue';

/** Linux's USER_HZ: /proc reports CPU time in 1/100 s on every mainstream kernel. */
const TICKS_PER_S = 100;

/** User + system CPU time a process has used, in ms (10 ms resolution). */
export async function processCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1_000) / TICKS_PER_S;
}

/** CPU time the Redis server has used (all clients: other load on the machine shows up here). */
export async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);
  return (user + sys) * 1_000;
}

/** CPU time of a worker's sandbox container (its runner and the commands it ran), in ms. */
export async function containerCpuMs(docker: Docker, workerId: string): Promise<number> {
  const [c] = await docker.listContainers({ filters: { label: [`research.worker=${workerId}`] } });
  if (!c) return Number.NaN;
  const stats = await docker.getContainer(c.Id).stats({ stream: false, 'one-shot': true });
  return stats.cpu_stats.cpu_usage.total_usage / 1e6;
}

/** The Docker engine's host processes (dockerd, containerd and its shims): every exec stream passes through them. */
export async function engineCpuMs(): Promise<number> {
  let total = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = (await readFile(`/proc/${entry}/comm`, 'utf8')).trim();
      if (comm === 'dockerd' || comm === 'containerd' || comm.startsWith('containerd-shim'))
        total += await processCpuMs(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return total;
}
