import type Dockerode from 'dockerode';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { pack } from 'tar-stream';
import { dockerStatus, toSandboxError } from './docker-errors.js';
import { SandboxImageMissingError } from './errors.js';
import { execOnce } from './exec.js';
import { LABEL_PREFIX, LABEL_SANDBOX, LABEL_SPEC, LABEL_VOLUME, LABEL_WORKER } from './labels.js';
import type { ResolvedOptions } from './options.js';
import { WORKSPACE_ROOT } from './paths.js';
import { specRecord } from './spec.js';

export const RESEARCH_DIR = '/opt/research';
/** The runner, a package directory python3 runs as a program (its __main__.py). */
export const RUNNER_PATH = `${RESEARCH_DIR}/runner`;

export function containerName(workerId: string): string {
  return `research-sandbox-${workerId}`;
}

/**
 * The container's create options: the hardening defaults live here (see README).
 *
 * Capabilities: `CapDrop: ALL`, then `capAdd`. By default CHOWN, DAC_OVERRIDE and FOWNER serve
 * the root set-up exec (it hands /workspace to the runner's uid, whoever populated the volume),
 * and SETUID, SETGID, KILL and SETPCAP the runner, which starts as root and at once drops to its
 * own uid keeping only SETUID and SETGID (to start each command as its task's uid and to switch
 * a thread's file-system uid to the task's for file actions), CHOWN (to hand a new task
 * directory to its uid) and KILL (to signal processes of other uids on timeout and cancel);
 * SETPCAP only empties its bounding set first. Commands hold no capability in any set (CapEff,
 * CapPrm, CapBnd, CapAmb all 0) and run under no-new-privileges.
 */
export function createSpec(o: ResolvedOptions): Dockerode.ContainerCreateOptions {
  const memory = o.memoryMb * 1024 * 1024;
  const spec: Dockerode.ContainerCreateOptions = {
    name: containerName(o.workerId),
    Image: o.image,
    Labels: { ...o.labels, ...ownLabels(o), [LABEL_WORKER]: o.workerId },
    // Our own keep-alive, not the image's entrypoint: the production image's entrypoint starts
    // services (browser, VNC) a network-less sandbox has no use for.
    Entrypoint: ['sleep'],
    Cmd: ['infinity'],
    WorkingDir: WORKSPACE_ROOT,
    Tty: false,
    OpenStdin: false,
    HostConfig: {
      NetworkMode: o.networkMode,
      Memory: memory,
      MemorySwap: memory,
      NanoCpus: Math.round(o.cpus * 1e9),
      PidsLimit: o.pids,
      CapDrop: ['ALL'],
      CapAdd: o.capAdd,
      SecurityOpt: ['no-new-privileges'],
      // docker-init as PID 1 reaps the orphans of killed commands.
      Init: true,
      ReadonlyRootfs: false,
      RestartPolicy: { Name: 'no' },
      Mounts: [{ Type: 'volume', Source: o.volume, Target: WORKSPACE_ROOT }],
    },
  };
  spec.Labels = { ...spec.Labels, [LABEL_SPEC]: JSON.stringify(specRecord(spec)) };
  return spec;
}

/** The labels every container and volume of this sandbox carries: ours, and the deployment's prefix. */
export function ownLabels(o: Pick<ResolvedOptions, 'queuePrefix'>): Record<string, string> {
  return { [LABEL_SANDBOX]: 'true', [LABEL_PREFIX]: o.queuePrefix };
}

/** This worker's container, by labels (running ones first). */
export async function findContainer(docker: Dockerode, workerId: string): Promise<Dockerode.ContainerInfo | undefined> {
  let list: Dockerode.ContainerInfo[];
  try {
    list = await docker.listContainers({
      all: true,
      filters: { label: [`${LABEL_SANDBOX}=true`, `${LABEL_WORKER}=${workerId}`] },
    });
  } catch (err) {
    throw toSandboxError(err, 'list containers');
  }
  return list.find((c) => c.State === 'running') ?? list[0];
}

/** The ID `image` resolves to now; SandboxImageMissingError when the engine does not have it. */
export async function resolveImage(docker: Dockerode, image: string): Promise<string> {
  try {
    return (await docker.getImage(image).inspect()).Id;
  } catch (err) {
    if (dockerStatus(err) === 404) {
      throw new SandboxImageMissingError(
        `sandbox image ${image} is not present; build it with \`npm run sandbox:image\` or pull it`,
        { cause: err },
      );
    }
    throw toSandboxError(err, 'inspect image');
  }
}

/**
 * The shared workspace volume, created when missing. Labelled as shared, never with a worker:
 * it outlives whichever worker made it, and gc removes it only when asked to and no live worker
 * of the deployment is left (see gc.ts).
 */
export async function ensureVolume(
  docker: Dockerode,
  o: Pick<ResolvedOptions, 'volume' | 'queuePrefix'>,
): Promise<void> {
  try {
    await docker.getVolume(o.volume).inspect();
  } catch (err) {
    if (dockerStatus(err) !== 404) throw toSandboxError(err, 'inspect volume');
    try {
      // Idempotent on the engine's side: a concurrent creator gets the same volume.
      await docker.createVolume({ Name: o.volume, Labels: { ...ownLabels(o), [LABEL_VOLUME]: 'shared' } });
    } catch (e) {
      throw toSandboxError(e, 'create volume');
    }
  }
}

export interface ContainerProbe {
  /** Absolute path of python3, or undefined when the image has none. */
  python: string | undefined;
}

/**
 * One root exec per container start: finds python3 and hands /workspace (not what is in it:
 * task directories keep their own uids) to the runner's uid, whoever populated the volume. The
 * only use of CHOWN, DAC_OVERRIDE and FOWNER.
 */
const PROBE = `
r="$1"
mkdir -p ${WORKSPACE_ROOT} ${WORKSPACE_ROOT}/.research/uids ${RESEARCH_DIR}
chown "$r:$r" ${WORKSPACE_ROOT} ${WORKSPACE_ROOT}/.research ${WORKSPACE_ROOT}/.research/uids || echo "chown=failed"
chmod 755 ${WORKSPACE_ROOT}; chmod 700 ${WORKSPACE_ROOT}/.research ${WORKSPACE_ROOT}/.research/uids
echo "python=$(command -v python3 || true)"
`;

export async function probeContainer(
  container: Dockerode.Container,
  runnerUid: number,
): Promise<ContainerProbe & { chownFailed: boolean }> {
  const r = await execOnce(container, ['/bin/sh', '-c', PROBE, 'probe', String(runnerUid)], {
    user: '0',
    timeoutMs: 60_000,
  });
  const kv = new Map(
    r.stdout
      .toString('utf8')
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
  );
  const python = kv.get('python') ?? '';
  return { python: python !== '' ? python : undefined, chownFailed: kv.has('chown') };
}

let runnerArchive: Buffer | undefined;

/** The runner directory shipped with this package (runner/, beside src/ and dist/), as a tar. */
async function runnerTar(): Promise<Buffer> {
  if (runnerArchive) return runnerArchive;
  const root = new URL('../runner/', import.meta.url);
  const tar = pack();
  tar.entry({ name: 'runner', type: 'directory', mode: 0o755, uid: 0, gid: 0 });
  const walk = (rel: string) => {
    for (const name of readdirSync(new URL(rel, root)).sort()) {
      if (name === '__pycache__') continue;
      const path = `${rel}${name}`;
      if (statSync(new URL(path, root)).isDirectory()) {
        tar.entry({ name: `runner/${path}`, type: 'directory', mode: 0o755, uid: 0, gid: 0 });
        walk(`${path}/`);
      } else if (name.endsWith('.py')) {
        const body = readFileSync(new URL(path, root));
        tar.entry({ name: `runner/${path}`, mode: 0o644, size: body.length, uid: 0, gid: 0 }, body);
      }
    }
  };
  walk('');
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const c of tar) chunks.push(c as Buffer);
  runnerArchive = Buffer.concat(chunks);
  return runnerArchive;
}

/** Copies the runner into the container with putArchive, so any image with python3 works. */
export async function installRunner(container: Dockerode.Container): Promise<void> {
  const body = await runnerTar();
  try {
    await container.putArchive(body, { path: RESEARCH_DIR });
  } catch (err) {
    throw toSandboxError(err, 'install runner');
  }
}
