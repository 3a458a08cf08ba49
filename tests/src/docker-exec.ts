import Docker from 'dockerode';

export { rootExec } from '@research/testing';

export const docker = new Docker();

/** The one container carrying `label` (`key=value`). */
export async function containerWith(label: string): Promise<Docker.Container> {
  const [c] = await docker.listContainers({ filters: { label: [label] } });
  if (!c) throw new Error(`no running container with ${label}`);
  return docker.getContainer(c.Id);
}
