import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import Docker from 'dockerode';

/**
 * Removes what these workers made in the Docker engine: their sandbox containers
 * (`research.worker=<id>`), the per-task containers and volumes of their pools
 * (`research.pool-owner=<id>`), and the shared workspace volume (when given). Anything already gone is fine.
 */
export async function removeSandboxes(workerIds: Iterable<string>, volume?: string): Promise<void> {
  const docker = new Docker();
  for (const id of workerIds) {
    for (const label of [`research.worker=${id}`, `research.pool-owner=${id}`]) {
      const containers = await docker.listContainers({ all: true, filters: { label: [label] } }).catch(() => []);
      for (const c of containers)
        await docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined);
    }
    const volumes = await docker
      .listVolumes({ filters: { label: [`research.pool-owner=${id}`] } })
      .then((r) => r.Volumes ?? [])
      .catch(() => []);
    for (const v of volumes)
      await docker
        .getVolume(v.Name)
        .remove()
        .catch(() => undefined);
  }
  if (volume === undefined) return;
  await docker
    .getVolume(volume)
    .remove()
    .catch(() => undefined);
}

/** Runs `cmd` as root in a container (an operator's look inside, outside the sandbox API): stdout and stderr in the order they came. */
export async function rootExec(container: Docker.Container, cmd: string): Promise<string> {
  const exec = await container.exec({ Cmd: ['sh', '-c', cmd], AttachStdout: true, AttachStderr: true, User: '0' });
  const stream = await exec.start({});
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  container.modem.demuxStream(stream, sink, sink);
  await new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  return Buffer.concat(chunks).toString('utf8');
}

/** Builds `tag` from a Dockerfile's text (FROM a local image: nothing is pulled); resolves to the image id. */
export async function buildImage(tag: string, dockerfile: string): Promise<string> {
  const docker = new Docker();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'research-image-'));
  try {
    writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
    const stream = await docker.buildImage({ context: dir, src: ['Dockerfile'] }, { t: tag });
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve())),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return (await docker.getImage(tag).inspect()).Id;
}

/** Removes a test image (gone already is fine). */
export async function removeImage(tag: string): Promise<void> {
  await new Docker()
    .getImage(tag)
    .remove({ force: true })
    .catch(() => undefined);
}

/**
 * An image shaped like the production one (`kortix/suna:0.1.2.8`, FROM python:3.11-slim):
 * python3 only at /usr/local/bin, root the only user, WORKDIR /app, a long-running service as
 * CMD. Built from the local `research-sandbox:latest`.
 */
export const ROOT_ONLY_DOCKERFILE = `FROM research-sandbox:latest
USER root
RUN userdel sandbox && rm -rf /home/sandbox \\
 && cp /usr/bin/python3.11 /usr/local/bin/python3 && rm -f /usr/bin/python3* \\
 && mkdir -p /app
WORKDIR /app
CMD ["/usr/local/bin/python3", "-m", "http.server", "8080"]
`;
