import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  check,
  parseManifests,
  referenceErrors,
  render,
  schemaErrors,
  unknownFieldErrors,
  type K8sObject,
} from './k8s.js';

const DIR = fileURLToPath(new URL('../../deploy/k8s/', import.meta.url));
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .map((f) => path.join(DIR, f));
const all = files.flatMap((f) => parseManifests(f));
const rendered = render(DIR);
const kustomization = readFileSync(path.join(DIR, 'kustomization.yaml'), 'utf8');
/** The kustomization with the DinD worker in place of the node-socket one. */
const dindKustomization = kustomization
  .replace(/^ {2}- worker-host-docker\.yaml$/m, '  # - worker-host-docker.yaml')
  .replace(/^ {2}# - worker-dind\.yaml$/m, '  - worker-dind.yaml');

// biome-ignore lint/suspicious/noExplicitAny: the broken variants below edit arbitrary paths of parsed YAML
type Yaml = any;

/** A copy of the rendered objects with `change` applied to the one of `kind`/`name`. */
function broken(kind: string, name: string, change: (o: Yaml) => void): K8sObject[] {
  return rendered.map((o) => {
    if (o.kind !== kind || o.metadata.name !== name) return o;
    const copy = structuredClone(o) as Yaml;
    change(copy);
    return copy as K8sObject;
  });
}

describe('deploy/k8s', () => {
  it('every manifest file is valid against the Kubernetes schemas, with no unknown field', async () => {
    expect(files.length).toBeGreaterThanOrEqual(8);
    expect(all.map((o) => o.kind)).toEqual(
      expect.arrayContaining(['Namespace', 'ConfigMap', 'Secret', 'Service', 'Deployment', 'StatefulSet']),
    );
    expect(await check(all, { references: false })).toEqual([]);
  });

  it('the kustomize rendering, with either worker variant, is valid and its references resolve', async () => {
    // The Secret is created out of band; secret.example.yaml stands for it.
    const secret = parseManifests(path.join(DIR, 'secret.example.yaml'));
    for (const objects of [rendered, render(DIR, dindKustomization)]) {
      expect(objects.every((o) => o.kind === 'Namespace' || o.metadata.namespace === 'research')).toBe(true);
      expect(objects.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name)).toEqual(
        expect.arrayContaining(['api', 'dashboard', 'worker']),
      );
      expect(await check([...objects, ...secret])).toEqual([]);
    }
    expect(render(DIR, dindKustomization).find((o) => o.metadata.name === 'worker')?.metadata.labels).toMatchObject({
      'research.sandbox/engine': 'dind',
    });
  });

  it('renders what kubectl kustomize renders, where kubectl is installed', () => {
    let out: string;
    try {
      out = execFileSync('kubectl', ['kustomize', DIR], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        console.log('k8s: kubectl is not installed; the rendering was checked by this test suite alone');
        return;
      }
      throw err;
    }
    const theirs = parseAllDocuments(out).map((d) => d.toJS() as Record<string, unknown>);
    const key = (o: { kind?: unknown; metadata?: unknown }) => `${o.kind}/${(o.metadata as { name: string }).name}`;
    const sort = <T extends { kind?: unknown; metadata?: unknown }>(xs: T[]) =>
      [...xs].sort((a, b) => key(a).localeCompare(key(b)));
    expect(sort(rendered.map(({ file: _f, ...o }) => o))).toEqual(sort(theirs));
  });

  describe('refuses a deliberately broken manifest', () => {
    it('a misspelt field', () => {
      const errors = unknownFieldErrors(broken('Deployment', 'api', (o) => (o.spec.replicass = 2)));
      expect(errors).toEqual([
        expect.stringMatching(/api\.yaml Deployment\/api: .*'"replicass"' does not exist in type 'IDeploymentSpec'/),
      ]);
    });

    it('a field of the wrong type', async () => {
      const errors = await schemaErrors(
        broken('Deployment', 'api', (o) => (o.spec.template.spec.containers[0].ports[0].containerPort = 'http')),
      );
      expect(errors).toEqual([expect.stringMatching(/Deployment\/api: .*containerPort must be integer/)]);
    });

    it('a missing required field', async () => {
      const errors = await schemaErrors(broken('Service', 'api', (o) => delete o.spec.ports[0].port));
      expect(errors).toEqual([
        expect.stringMatching(/api\.yaml Service\/api: data\/spec\/ports\/0 must have required property port/),
      ]);
    });

    it('an unknown kind', async () => {
      const errors = await schemaErrors([{ ...rendered[0]!, kind: 'Deploymnet' }]);
      expect(errors).toEqual([expect.stringMatching(/no schema for v1 Deploymnet/)]);
    });

    it('a selector that matches no pod label, a probe on an unnamed port, an undeclared volume', () => {
      const errors = referenceErrors(
        broken('Deployment', 'worker', (o) => {
          o.spec.selector.matchLabels['app.kubernetes.io/name'] = 'wroker';
          o.spec.template.spec.containers[0].readinessProbe = { tcpSocket: { port: 'metrics' } };
          o.spec.template.spec.containers[0].volumeMounts.push({ name: 'scratch', mountPath: '/tmp' });
        }),
      );
      expect(errors).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/Deployment\/worker: selector app.kubernetes.io\/name=wroker does not match/),
          expect.stringMatching(/Deployment\/worker: container worker probes port "metrics"/),
          expect.stringMatching(/Deployment\/worker: container worker mounts undeclared volume scratch/),
        ]),
      );
    });

    it('a ConfigMap nobody defines, and a Service whose target port no pod names', () => {
      const errors = referenceErrors(
        broken('Deployment', 'dashboard', (o) => {
          o.spec.template.spec.containers[0].envFrom[0].configMapRef.name = 'research-konfig';
          o.spec.template.spec.containers[0].ports[0].name = 'web';
        }),
      );
      expect(errors).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/container dashboard reads ConfigMap research-konfig, which is not defined/),
          expect.stringMatching(/Service\/dashboard: targetPort "http" is no port name/),
        ]),
      );
    });

    it('both worker variants in one kustomization, and YAML that does not parse', () => {
      const both = kustomization.replace(/^ {2}# - worker-dind\.yaml$/m, '  - worker-dind.yaml');
      expect(() => render(DIR, both)).toThrow(/Deployment\/worker is defined twice/);
      expect(() => render(DIR, `${kustomization}images:\n  - name: x\n`)).toThrow(/does not know: images/);
      expect(() => parseManifests('bad.yaml', 'kind: Service\n  metadata: [\n')).toThrow(/bad\.yaml/);
    });
  });
});
