import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';

export const docker = new Docker();

/** Runs `cmd` as root in a container (an operator's look inside, outside the sandbox API). */
export async function rootExec(container: Docker.Container, cmd: string): Promise<string> {
  const exec = await container.exec({ Cmd: ['sh', '-c', cmd], AttachStdout: true, AttachStderr: true, User: '0' });
  const stream = await exec.start({});
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  // Docker's 8-byte frame headers.
  const all = Buffer.concat(chunks);
  const out: Buffer[] = [];
  for (let i = 0; i + 8 <= all.length; ) {
    const size = all.readUInt32BE(i + 4);
    out.push(all.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(out).toString('utf8');
}

/** The one container carrying `label` (`key=value`). */
export async function containerWith(label: string): Promise<Docker.Container> {
  const [c] = await docker.listContainers({ filters: { label: [label] } });
  if (!c) throw new Error(`no running container with ${label}`);
  return docker.getContainer(c.Id);
}

/**
 * An image shaped like the production one (`kortix/suna:0.1.2.8`, FROM python:3.11-slim):
 * python3 only at /usr/local/bin, root the only user, WORKDIR /app, a long-running service as
 * CMD. Built from the local `research-sandbox:latest` (no registry). Remove it with `docker.getImage(tag).remove()`.
 */
export async function buildRootOnlyImage(tag: string): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rootonly-'));
  try {
    writeFileSync(
      path.join(dir, 'Dockerfile'),
      [
        'FROM research-sandbox:latest',
        'USER root',
        'RUN userdel sandbox && rm -rf /home/sandbox \\',
        ' && cp /usr/bin/python3.11 /usr/local/bin/python3 && rm -f /usr/bin/python3* \\',
        ' && mkdir -p /app',
        'WORKDIR /app',
        'CMD ["/usr/local/bin/python3", "-m", "http.server", "8080"]',
        '',
      ].join('\n'),
    );
    const stream = await docker.buildImage({ context: dir, src: ['Dockerfile'] }, { t: tag });
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve())),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
