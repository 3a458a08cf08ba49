import type Dockerode from 'dockerode';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { pack } from 'tar-stream';
import { dockerStatus, toSandboxError } from './docker-errors.js';
import { SandboxImageMissingError } from './errors.js';
import { execOnce } from './exec.js';
import type { ResolvedOptions } from './options.js';
import { WORKSPACE_ROOT } from './paths.js';

export const LABEL_SANDBOX = 'research.sandbox';
export const LABEL_WORKER = 'research.worker';
export const RUNNER_DIR = '/opt/research';
/** The runner, a package directory python3 runs as a program (its __main__.py). */
export const RUNNER_PATH = `${RUNNER_DIR}/runner`;

export function containerName(workerId: string): string {
  return `research-sandbox-${workerId}`;
}

/** The container's create options: the hardening defaults live here (see README). */
export function createSpec(o: ResolvedOptions): Dockerode.ContainerCreateOptions {
  const memory = o.memoryMb * 1024 * 1024;
  return {
    name: containerName(o.workerId),
    Image: o.image,
    Labels: { ...o.labels, [LABEL_SANDBOX]: 'true', [LABEL_WORKER]: o.workerId },
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

export async function ensureImage(docker: Dockerode, image: string): Promise<void> {
  try {
    await docker.getImage(image).inspect();
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

export async function ensureVolume(docker: Dockerode, volume: string): Promise<void> {
  try {
    await docker.getVolume(volume).inspect();
  } catch (err) {
    if (dockerStatus(err) !== 404) throw toSandboxError(err, 'inspect volume');
    try {
      // Idempotent on the engine's side: a concurrent creator gets the same volume.
      await docker.createVolume({ Name: volume, Labels: { [LABEL_SANDBOX]: 'true' } });
    } catch (e) {
      throw toSandboxError(e, 'create volume');
    }
  }
}

export interface ContainerProbe {
  /** The exec user for actions, or undefined for the image's default user. */
  user: string | undefined;
  /** Absolute path of python3, or undefined when the image has none. */
  python: string | undefined;
}

/**
 * One root exec per container start: finds the action user and python3, and hands /workspace
 * to the user when the volume was populated by another image (the only use of CHOWN,
 * DAC_OVERRIDE and FOWNER).
 */
const PROBE = `
u="$1"; uid=""
if [ -n "$u" ] && id -u "$u" >/dev/null 2>&1; then uid=$(id -u "$u"); gid=$(id -g "$u"); fi
mkdir -p ${WORKSPACE_ROOT} ${RUNNER_DIR}
if [ -n "$uid" ] && [ "$(stat -c %u ${WORKSPACE_ROOT} 2>/dev/null)" != "$uid" ]; then
  chown -R "$uid:$gid" ${WORKSPACE_ROOT} 2>/dev/null || echo "chown=failed"
fi
echo "uid=$uid"
echo "python=$(command -v python3 || true)"
`;

export async function probeContainer(
  container: Dockerode.Container,
  user: string,
): Promise<ContainerProbe & { chownFailed: boolean }> {
  const r = await execOnce(container, ['/bin/sh', '-c', PROBE, 'probe', user], { user: '0', timeoutMs: 60_000 });
  const kv = new Map(
    r.stdout
      .toString('utf8')
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
  );
  const uid = kv.get('uid') ?? '';
  const python = kv.get('python') ?? '';
  return {
    user: uid !== '' ? user : undefined,
    python: python !== '' ? python : undefined,
    chownFailed: kv.has('chown'),
  };
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
    await container.putArchive(body, { path: RUNNER_DIR });
  } catch (err) {
    throw toSandboxError(err, 'install runner');
  }
}
