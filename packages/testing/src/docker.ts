import Docker from 'dockerode';

/**
 * Removes what these workers made in the Docker engine: their sandbox containers
 * (`research.worker=<id>`), the per-task containers and volumes of their pools
 * (`research.pool-owner=<id>`), and the shared workspace volume. Anything already gone is fine.
 */
export async function removeSandboxes(workerIds: Iterable<string>, volume: string): Promise<void> {
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
  await docker
    .getVolume(volume)
    .remove()
    .catch(() => undefined);
}
