import { describe, expect, it } from 'vitest';
import { loadEnv } from '@research/config';
import { createSpec } from './container.js';
import { DEFAULTS, resolveOptions, sandboxOptionsFromEnv } from './options.js';
import { describeDrift, imageDrift, specDrift, specRecord } from './spec.js';

describe('sandboxOptionsFromEnv', () => {
  it('maps the SANDBOX_* variables and WORKER_ID', () => {
    const env = loadEnv({
      WORKER_ID: 'w-1',
      SANDBOX_IMAGE: 'img:1',
      SANDBOX_VOLUME: 'vol',
      SANDBOX_NETWORK: 'none',
      SANDBOX_MEMORY_MB: '512',
      SANDBOX_CPUS: '0.5',
      SANDBOX_PIDS: '64',
      SANDBOX_COMMAND_TIMEOUT_MS: '5000',
      SANDBOX_TASK_DISK_MB: '64',
      SANDBOX_MAX_OUTPUT_BYTES: '4096',
      SANDBOX_LIVE_OUTPUT_BYTES: '0',
    });
    expect(sandboxOptionsFromEnv(env)).toEqual({
      workerId: 'w-1',
      queuePrefix: '{research}',
      image: 'img:1',
      volume: 'vol',
      networkMode: 'none',
      memoryMb: 512,
      cpus: 0.5,
      pids: 64,
      commandTimeoutMs: 5000,
      taskDiskMb: 64,
      maxOutputBytes: 4096,
      liveOutputMaxBytes: 0,
    });
  });

  it('has the same defaults as the environment table', () => {
    const fromEnv = resolveOptions(sandboxOptionsFromEnv(loadEnv({ WORKER_ID: 'w' })));
    const fromCode = resolveOptions({ workerId: 'w' });
    expect(fromEnv).toEqual(fromCode);
    expect(fromCode).toMatchObject({ image: DEFAULTS.image, networkMode: 'none', memoryMb: 1024, pids: 256 });
  });
});

describe('createSpec', () => {
  it('hardens the container and labels it', () => {
    const spec = createSpec(
      resolveOptions({
        workerId: 'w-2',
        memoryMb: 256,
        cpus: 1.5,
        pids: 32,
        labels: { team: 'x', 'research.worker': 'spoofed' },
      }),
    );
    expect(spec.name).toBe('research-sandbox-w-2');
    expect(spec.Labels).toEqual({
      team: 'x',
      'research.sandbox': 'true',
      'research.worker': 'w-2',
      'research.prefix': '{research}',
      'research.spec': JSON.stringify(specRecord(spec)),
    });
    expect(spec.HostConfig).toMatchObject({
      NetworkMode: 'none',
      Memory: 256 * 1024 * 1024,
      MemorySwap: 256 * 1024 * 1024,
      NanoCpus: 1.5e9,
      PidsLimit: 32,
      CapDrop: ['ALL'],
      CapAdd: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'KILL', 'SETGID', 'SETUID', 'SETPCAP'],
      SecurityOpt: ['no-new-privileges'],
      Init: true,
      ReadonlyRootfs: false,
      Mounts: [{ Type: 'volume', Source: 'daytona-workspace', Target: '/workspace' }],
    });
  });
});

describe('specDrift', () => {
  const spec = createSpec(resolveOptions({ workerId: 'w-3' }));
  const wanted = specRecord(spec);

  it('finds nothing on the container it was made from, whatever the order of capabilities', () => {
    expect(specDrift(spec.Labels, wanted)).toEqual([]);
    const reordered = createSpec(resolveOptions({ workerId: 'w-3', capAdd: [...DEFAULTS.capAdd].reverse() }));
    expect(specDrift(reordered.Labels, wanted)).toEqual([]);
  });

  it('names each field that differs, with both values', () => {
    const looser = createSpec(resolveOptions({ workerId: 'w-3', pids: 4096, networkMode: 'bridge' }));
    const drift = specDrift(looser.Labels, wanted);
    expect(drift).toEqual([
      { field: 'network', want: '"none"', have: '"bridge"' },
      { field: 'pids', want: '256', have: '4096' },
    ]);
    expect(describeDrift(drift)).toBe('network: want "none", have "bridge"; pids: want 256, have 4096');
  });

  it('a container without a readable record differs as a whole', () => {
    expect(specDrift({ 'research.sandbox': 'true' }, wanted)).toEqual([
      { field: 'spec', want: 'a recorded create spec', have: 'none' },
    ]);
    expect(specDrift({ 'research.spec': '{oops' }, wanted)[0]).toMatchObject({ field: 'spec', have: 'unreadable' });
  });

  it('compares images by ID, naming both tags', () => {
    const container = { Image: 'sha256:aaaaaaaaaaaaaaaa', Config: { Image: 'img:old' } } as Parameters<
      typeof imageDrift
    >[0];
    expect(imageDrift(container, { name: 'img:old', id: 'sha256:aaaaaaaaaaaaaaaa' })).toBeUndefined();
    expect(imageDrift(container, { name: 'img:new', id: 'sha256:bbbbbbbbbbbbbbbb' })).toEqual({
      field: 'image',
      want: 'img:new (bbbbbbbbbbbb)',
      have: 'img:old (aaaaaaaaaaaa)',
    });
  });
});
