/**
 * Checks Kubernetes manifests offline, as `kubeconform -strict` would against a cluster's schemas
 * (neither kubeconform nor a cluster is available here): every object is validated by
 * kubernetes-models, whose validators are compiled from the Kubernetes OpenAPI schemas (types,
 * required fields, enums, formats), and type-checked by tsc against the same package's
 * interfaces, which rejects the unknown fields the compiled validators let through (a misspelt
 * `replicass` is accepted by the schemas, as by a non-strict API server). On top come the
 * references no schema sees: selectors against pod labels, named ports, volumes, ConfigMaps and
 * Secrets. `render` is the subset of kustomize that deploy/k8s uses (a namespace and files).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

/** One object of a manifest file. */
export interface K8sObject {
  file: string;
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

const id = (o: K8sObject) => `${path.basename(o.file)} ${o.kind}/${o.metadata?.name ?? '?'}`;

/** Parses every YAML document of `file` (YAML errors are thrown, naming the file). */
export function parseManifests(file: string, text = readFileSync(file, 'utf8')): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as K8sObject | null;
    if (value !== null) out.push({ ...value, file });
  }
  return out;
}

/** kubernetes-models' module for an apiVersion and kind: `v1` → `v1/Kind`, `apps/v1` → `apps/v1/Kind`. */
function modelPath(o: K8sObject): string {
  return `kubernetes-models/${o.apiVersion}/${o.kind}`;
}

/** Validates each object against its schema; returns one message per problem. */
export async function schemaErrors(objects: K8sObject[]): Promise<string[]> {
  const errors: string[] = [];
  for (const o of objects) {
    const { file: _file, ...data } = o;
    let Model: new (data: unknown) => { validate(): void };
    try {
      const mod = (await import(modelPath(o))) as Record<string, new (data: unknown) => { validate(): void }>;
      Model = mod[o.kind] as typeof Model;
      if (typeof Model !== 'function') throw new Error('no model');
    } catch {
      errors.push(`${id(o)}: no schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    try {
      new Model(data).validate();
    } catch (err) {
      errors.push(`${id(o)}: ${(err as Error).message}`);
    }
  }
  return errors;
}

/**
 * Type-checks each object as an object literal of its kubernetes-models interface, so tsc's
 * excess-property check names every field the Kubernetes API does not have.
 */
export function unknownFieldErrors(objects: K8sObject[]): string[] {
  const virtual = path.join(path.dirname(fileURLToPath(import.meta.url)), '__manifests__.ts');
  let source = '';
  const owners: { from: number; object: K8sObject }[] = [];
  objects.forEach((o, i) => {
    const { file: _file, ...data } = o;
    source += `import type { I${o.kind} as T${i} } from '${modelPath(o)}';\n`;
    owners.push({ from: source.split('\n').length - 1, object: o });
    source += `export const m${i}: T${i} = ${JSON.stringify(data, null, 2)};\n`;
  });
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, ...rest) =>
    name === virtual ? ts.createSourceFile(name, source, version) : getSourceFile(name, version, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === virtual || fileExists(name);
  const program = ts.createProgram([virtual], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, ' ');
    if (d.file?.fileName !== virtual || d.start === undefined) return text;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    const owner = owners.filter((w) => w.from <= line).at(-1);
    return `${owner ? id(owner.object) : 'manifests'}: ${text}`;
  });
}

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume', 'StorageClass']);
const KUSTOMIZATION_KEYS = new Set(['apiVersion', 'kind', 'namespace', 'resources']);

/**
 * Renders `dir/kustomization.yaml` the way kustomize does for the fields deploy/k8s uses:
 * the listed files, each namespaced object put into `namespace`, duplicate objects refused.
 * Any other kustomization field is refused too, so this cannot silently render less than kustomize.
 */
export function render(dir: string, kustomization = readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) {
  const k = parseManifests(path.join(dir, 'kustomization.yaml'), kustomization)[0] as unknown as Record<
    string,
    unknown
  >;
  const extra = Object.keys(k).filter((key) => key !== 'file' && !KUSTOMIZATION_KEYS.has(key));
  if (extra.length > 0) throw new Error(`kustomization.yaml: fields this renderer does not know: ${extra.join(', ')}`);
  if (k.kind !== 'Kustomization') throw new Error('kustomization.yaml: kind must be Kustomization');
  const resources = k.resources as unknown;
  if (!Array.isArray(resources) || resources.some((r) => typeof r !== 'string'))
    throw new Error('kustomization.yaml: resources must be a list of files');
  const namespace = typeof k.namespace === 'string' ? k.namespace : undefined;
  const seen = new Map<string, string>();
  const out: K8sObject[] = [];
  for (const resource of resources as string[]) {
    for (const o of parseManifests(path.join(dir, resource))) {
      const scoped = !CLUSTER_SCOPED.has(o.kind);
      const placed = scoped && namespace ? { ...o, metadata: { ...o.metadata, namespace } } : (o as K8sObject);
      const key = `${o.apiVersion} ${o.kind} ${placed.metadata.namespace ?? ''}/${o.metadata.name}`;
      const before = seen.get(key);
      if (before) throw new Error(`${o.kind}/${o.metadata.name} is defined twice (${before} and ${resource})`);
      seen.set(key, resource);
      out.push(placed);
    }
  }
  return out;
}

type Pod = {
  containers?: Container[];
  initContainers?: Container[];
  volumes?: { name: string }[];
};
type Container = {
  name: string;
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: { name: string }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
};
type Probe = { httpGet?: { port: string | number }; tcpSocket?: { port: string | number } };
type Workload = K8sObject & {
  spec: {
    selector?: { matchLabels?: Record<string, string> };
    template?: { metadata?: { labels?: Record<string, string> }; spec?: Pod };
    volumeClaimTemplates?: { metadata: { name: string } }[];
  };
};

/**
 * What the API server accepts but breaks at run time: a selector that matches none of the pod's
 * labels, a probe on a port name no container has, a mount of an undeclared volume, a
 * ConfigMap or Secret nobody defines, a Service that selects no pod or targets a missing port.
 */
export function referenceErrors(objects: K8sObject[]): string[] {
  const errors: string[] = [];
  const named = (kind: string) => new Set(objects.filter((o) => o.kind === kind).map((o) => o.metadata.name));
  const configMaps = named('ConfigMap');
  const secrets = named('Secret');
  const workloads = objects.filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind)) as Workload[];
  for (const w of workloads) {
    const labels = w.spec.template?.metadata?.labels ?? {};
    for (const [k, v] of Object.entries(w.spec.selector?.matchLabels ?? {}))
      if (labels[k] !== v) errors.push(`${id(w)}: selector ${k}=${v} does not match the pod template's labels`);
    const pod = w.spec.template?.spec ?? {};
    const volumes = new Set([
      ...(pod.volumes ?? []).map((v) => v.name),
      ...(w.spec.volumeClaimTemplates ?? []).map((v) => v.metadata.name),
    ]);
    for (const c of [...(pod.containers ?? []), ...(pod.initContainers ?? [])]) {
      const ports = new Set((c.ports ?? []).map((p) => p.name).filter(Boolean));
      for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
        const port = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
        if (typeof port === 'string' && !ports.has(port))
          errors.push(`${id(w)}: container ${c.name} probes port "${port}", which it does not name`);
      }
      for (const m of c.volumeMounts ?? [])
        if (!volumes.has(m.name)) errors.push(`${id(w)}: container ${c.name} mounts undeclared volume ${m.name}`);
      for (const e of c.envFrom ?? []) {
        if (e.configMapRef && !configMaps.has(e.configMapRef.name))
          errors.push(`${id(w)}: container ${c.name} reads ConfigMap ${e.configMapRef.name}, which is not defined`);
        if (e.secretRef && !secrets.has(e.secretRef.name))
          errors.push(`${id(w)}: container ${c.name} reads Secret ${e.secretRef.name}, which is not defined`);
      }
    }
  }
  for (const s of objects.filter((o) => o.kind === 'Service') as (K8sObject & {
    spec: { selector?: Record<string, string>; ports?: { targetPort?: string | number }[] };
  })[]) {
    const selector = Object.entries(s.spec.selector ?? {});
    const targets = workloads.filter(
      (w) =>
        w.metadata.namespace === s.metadata.namespace &&
        selector.every(([k, v]) => w.spec.template?.metadata?.labels?.[k] === v),
    );
    if (selector.length > 0 && targets.length === 0) errors.push(`${id(s)}: selects no pod`);
    for (const p of s.spec.ports ?? []) {
      if (typeof p.targetPort !== 'string') continue;
      const has = targets.some((w) =>
        (w.spec.template?.spec?.containers ?? []).some((c) => (c.ports ?? []).some((cp) => cp.name === p.targetPort)),
      );
      if (!has) errors.push(`${id(s)}: targetPort "${p.targetPort}" is no port name of the pods it selects`);
    }
  }
  return errors;
}

/** Every problem of a set of objects: schema, unknown fields, references. */
export async function check(objects: K8sObject[], { references = true } = {}): Promise<string[]> {
  return [
    ...(await schemaErrors(objects)),
    ...unknownFieldErrors(objects),
    ...(references ? referenceErrors(objects) : []),
  ];
}
