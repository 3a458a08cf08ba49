import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Machine {
  nproc: number;
  memoryGb: number;
  cpu: string;
  node: string;
  date: string;
  /** 1, 5 and 15-minute load averages when the run ended (the machine may be shared). */
  loadAvg: number[];
}

export function machine(): Machine {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    // not Linux: keep os.cpus()'s answer
  }
  return {
    nproc: os.availableParallelism(),
    memoryGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    cpu,
    node: process.version,
    date: new Date().toISOString(),
    loadAvg: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}
