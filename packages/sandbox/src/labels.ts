/**
 * The labels on every Docker object the sandbox makes: what finds a worker's container again,
 * and what garbage collection goes by (see gc.ts). An object without `research.sandbox=true` and
 * this deployment's `research.prefix` is never ours to remove.
 */

/** `true` on every container and volume the sandbox makes. */
export const LABEL_SANDBOX = 'research.sandbox';
/** The worker id a container belongs to (a pool slot's container: the slot id). */
export const LABEL_WORKER = 'research.worker';
/** The worker that made a pool slot's container and volume (SANDBOX_ISOLATION=task). */
export const LABEL_POOL_OWNER = 'research.pool-owner';
/** A pool slot's id, on its container and its volume. */
export const LABEL_SLOT = 'research.slot';
/** The queue prefix of the deployment: two deployments on one engine never collect each other's objects. */
export const LABEL_PREFIX = 'research.prefix';
/** What a volume is: `shared` (SANDBOX_VOLUME, every worker's /workspace) or `slot` (one pool slot's). */
export const LABEL_VOLUME = 'research.volume';
/** The container's create spec as JSON (see spec.ts): a worker tells from it whether the container is still as configured. */
export const LABEL_SPEC = 'research.spec';

/** Who owns a container or volume: a pool slot's owning worker, else the worker it is labelled with. */
export function ownerOf(labels: Record<string, string> | undefined | null): string | undefined {
  return labels?.[LABEL_POOL_OWNER] ?? labels?.[LABEL_WORKER];
}
