import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { SERVICE_ENVS, storageConfigFromEnv, type ServiceName } from '@moco/config';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

// Renders the Kubernetes manifests (deploy/) with kubectl's built-in kustomize and checks every object
// against the Kubernetes schemas (kubernetes-models) and KEDA's (@kubernetes-models/keda), then the
// invariants a deployment relies on.

const ROOT = path.join(import.meta.dirname, '../..');
const OVERLAYS = ['cpu', 'gpu'] as const;
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
const haveKubectl = kubectl.status === 0;
if (!haveKubectl) console.warn('deploy manifests: kubectl not found, so kustomize cannot render them; these tests are skipped');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [field: string]: unknown;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  readinessProbe?: unknown;
  livenessProbe?: unknown;
}
interface PodSpec {
  containers: Container[];
  tolerations?: { key?: string; effect?: string }[];
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean };
}

function render(overlay: string): K8sObject[] {
  const out = execFileSync('kubectl', ['kustomize', path.join(ROOT, 'deploy/overlays', overlay)], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJS() as K8sObject);
}

/** The kubernetes-models class for an object's apiVersion and kind (core `v1` or `group/version`). */
async function modelClass(obj: K8sObject): Promise<new (data: unknown) => { validate(): void }> {
  const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion];
  const spec = group === 'keda.sh' ? `@kubernetes-models/keda/keda.sh/${version}` : group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`;
  const mod = (await import(spec)) as Record<string, new (data: unknown) => { validate(): void }>;
  const cls = mod[obj.kind];
  if (!cls) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`);
  return cls;
}

const podSpecOf = (obj: K8sObject): PodSpec => (obj.spec as { template: { spec: PodSpec } }).template.spec;
const find = (objs: K8sObject[], kind: string, name: string) => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
};
/** Which service's configuration a container's command starts. */
function serviceOf(container: Container): ServiceName | 'migrate' {
  const cmd = (container.command ?? []).join(' ');
  for (const name of ['api', 'worker', 'embedder'] as const) if (cmd.includes(`apps/${name}/src/main.js`)) return name;
  if (cmd.includes('migrate-cli.js')) return 'migrate';
  throw new Error(`container ${container.name} starts an unknown command: ${cmd}`);
}

/** The environment a container gets: its ConfigMaps and Secrets, then its own env (which wins). */
function containerEnv(objs: K8sObject[], c: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, find(objs, 'ConfigMap', from.configMapRef.name).data as Record<string, string>);
    if (from.secretRef) Object.assign(env, find(objs, 'Secret', from.secretRef.name).stringData as Record<string, string>);
  }
  // A fieldRef (the pod's name) is a non-empty string at run time.
  for (const v of c.env ?? []) env[v.name] = v.value ?? (v.valueFrom ? 'from-the-pod' : '');
  return env;
}

const KNOWN_VARIABLES = new Set(Object.values(SERVICE_ENVS).flatMap((schema) => Object.keys(schema.shape)));

describe.skipIf(!haveKubectl)('Kubernetes manifests (deploy/)', () => {
  for (const overlay of OVERLAYS) {
    describe(`overlay ${overlay}`, () => {
      const objs = haveKubectl ? render(overlay) : [];

      it('every object is valid against the Kubernetes and KEDA schemas', async () => {
        expect(objs.length).toBeGreaterThan(10);
        for (const obj of objs) {
          const Model = await modelClass(obj);
          expect(() => new Model(obj).validate(), `${obj.kind} ${obj.metadata.name}`).not.toThrow();
        }
      });

      it('every long-running container has probes, requests and limits, and runs as non-root', () => {
        for (const obj of objs.filter((o) => ['Deployment', 'Job'].includes(o.kind))) {
          const pod = podSpecOf(obj);
          expect(pod.securityContext?.runAsNonRoot, obj.metadata.name).toBe(true);
          for (const c of pod.containers) {
            const where = `${obj.metadata.name}/${c.name}`;
            expect(c.resources?.requests?.cpu, where).toBeDefined();
            expect(c.resources?.requests?.memory, where).toBeDefined();
            expect(c.resources?.limits?.memory, where).toBeDefined();
            if (obj.kind === 'Deployment') {
              expect(c.readinessProbe, where).toBeDefined();
              expect(c.livenessProbe, where).toBeDefined();
            }
          }
        }
      });

      it('every environment variable is one libs/config knows, and each service parses its environment', () => {
        for (const obj of objs.filter((o) => ['Deployment', 'Job'].includes(o.kind))) {
          for (const c of podSpecOf(obj).containers) {
            const env = containerEnv(objs, c);
            for (const name of Object.keys(env)) expect(KNOWN_VARIABLES.has(name), `${obj.metadata.name}: ${name}`).toBe(true);
            const service = serviceOf(c);
            if (service === 'migrate') {
              expect(env.DATABASE_URL, 'the migration Job needs DATABASE_URL').toMatch(/^postgres/);
              continue;
            }
            const schema = SERVICE_ENVS[service];
            for (const v of c.env ?? []) expect(Object.keys(schema.shape), `${service} reads ${v.name}`).toContain(v.name);
            const parsed = schema.safeParse(env);
            expect(parsed.error?.issues ?? [], `${obj.metadata.name}`).toEqual([]);
            expect(() => storageConfigFromEnv(parsed.data!)).not.toThrow();
          }
        }
      });

      it('each service is wired: Services select pods, the API is autoscaled, the workers by KEDA on the queue', () => {
        for (const svc of objs.filter((o) => o.kind === 'Service')) {
          const selector = (svc.spec as { selector: Record<string, string> }).selector;
          const target = objs.find(
            (o) => o.kind === 'Deployment' && Object.entries(selector).every(([k, v]) => (o.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels[k] === v),
          );
          expect(target, `Service ${svc.metadata.name} selects a Deployment`).toBeDefined();
        }
        const hpa = find(objs, 'HorizontalPodAutoscaler', 'moco-api').spec as { scaleTargetRef: { name: string } };
        expect(hpa.scaleTargetRef.name).toBe('moco-api');
        const scaled = find(objs, 'ScaledObject', 'moco-worker').spec as {
          scaleTargetRef: { name: string };
          minReplicaCount: number;
          triggers: { type: string; metadata: Record<string, string> }[];
        };
        expect(scaled.scaleTargetRef.name).toBe('moco-worker');
        expect(scaled.minReplicaCount).toBe(0);
        const trigger = scaled.triggers[0]!;
        expect(trigger.type).toBe('metrics-api');
        // The URL reaches the API's Service in the rendered namespace, at the route the API serves.
        const ns = find(objs, 'Deployment', 'moco-api').metadata.namespace;
        expect(trigger.metadata.url).toBe(`http://moco-api.${ns}.svc.cluster.local:8080/queue-depth`);
        expect(trigger.metadata.valueLocation).toBe('demand');
        for (const name of ['moco-api', 'moco-worker', 'moco-embedder']) {
          expect(objs.some((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name === name), `PDB for ${name}`).toBe(true);
        }
        const worker = podSpecOf(find(objs, 'Deployment', 'moco-worker'));
        expect(worker.terminationGracePeriodSeconds, 'time for the SIGTERM checkpoint').toBeGreaterThanOrEqual(120);
      });

      it(overlay === 'gpu' ? 'the GPU worker requests a GPU, tolerates the GPU taint and trains on tensorflow' : 'the CPU worker requests no GPU', () => {
        const worker = podSpecOf(find(objs, 'Deployment', 'moco-worker'));
        const c = worker.containers[0]!;
        const backend = c.env?.find((v) => v.name === 'TRAIN_BACKEND')?.value;
        if (overlay === 'gpu') {
          expect(c.resources?.limits?.['nvidia.com/gpu']).toBe(1);
          expect(worker.tolerations?.some((t) => t.key === 'nvidia.com/gpu' && t.effect === 'NoSchedule')).toBe(true);
          expect(backend).toBe('tensorflow');
          expect(c.image).toMatch(/-gpu:/);
        } else {
          expect(c.resources?.limits?.['nvidia.com/gpu']).toBeUndefined();
          expect(backend).toBe('native');
        }
        // The API and embedder never take a GPU.
        for (const name of ['moco-api', 'moco-embedder']) {
          expect(podSpecOf(find(objs, 'Deployment', name)).containers[0]!.resources?.limits?.['nvidia.com/gpu']).toBeUndefined();
        }
      });
    });
  }
});
