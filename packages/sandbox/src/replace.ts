import type Dockerode from 'dockerode';
import type { Logger } from '@research/config';
import { createSpec, resolveImage } from './container.js';
import { dockerStatus, toSandboxError } from './docker-errors.js';
import type { ResolvedOptions } from './options.js';
import { type Drift, describeDrift, imageDrift, specDrift, specRecord } from './spec.js';

/**
 * Removes the found container when it runs another image ID than SANDBOX_IMAGE resolves to now,
 * or was made with another hardening spec; returns how it differed (empty: kept). An incident:
 * a worker restarted with another image found its stopped container, started it and ran the old
 * image. The workspace is on the volume, so only the container's own file system goes.
 */
export async function replaceIfDrifted(
  docker: Dockerode,
  container: Dockerode.Container,
  o: ResolvedOptions,
  log: Logger,
): Promise<Drift[]> {
  let info: Dockerode.ContainerInspectInfo;
  try {
    info = await container.inspect();
  } catch (err) {
    if (dockerStatus(err) === 404) return [];
    throw toSandboxError(err, 'inspect container');
  }
  const imageId = await resolveImage(docker, o.image);
  const image = imageDrift(info, { name: o.image, id: imageId });
  const drift = [...(image ? [image] : []), ...specDrift(info.Config.Labels, specRecord(createSpec(o)))];
  if (drift.length === 0) return drift;
  const name = info.Name.replace(/^\//, '');
  log.warn(
    { containerId: info.Id.slice(0, 12), drift },
    `sandbox container ${name} differs from the configuration (${describeDrift(drift)}); replacing it`,
  );
  try {
    await container.remove({ force: true });
  } catch (err) {
    if (dockerStatus(err) !== 404) throw toSandboxError(err, 'remove a container that differs');
  }
  return drift;
}
