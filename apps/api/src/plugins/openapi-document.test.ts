import { API_ERROR_CODES, JOB_EVENT_TYPES } from '@moco/contracts';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { bearer, useTestApp } from '../testing/test-app.js';
import { insertDataset } from '../testing/fixtures.js';

// The served OpenAPI document is fit for client generators: every operation has a stable
// operationId, a summary, examples that match its own schemas, and its error answers documented
// with the one error schema.

interface Media {
  schema?: object;
  example?: unknown;
}
interface Operation {
  operationId?: string;
  summary?: string;
  security?: unknown[];
  parameters?: { in: string; name: string; style?: string; schema?: object }[];
  requestBody?: { content: Record<string, Media> };
  responses: Record<string, { description: string; content?: Record<string, Media> }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { properties?: Record<string, any> }> };
}

describe('the OpenAPI document', () => {
  const t = useTestApp();
  let doc: Document;
  let operations: [string, Operation][];

  beforeAll(async () => {
    doc = (await (await fetch(`${t.current.url}/docs/json`)).json()) as Document;
    operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]): [string, Operation] => [`${method.toUpperCase()} ${path}`, op]),
    );
  });

  it('names every operation uniquely in camelCase, with a summary', () => {
    const ids = operations.map(([, op]) => op.operationId);
    expect(ids.every((id) => /^[a-z][A-Za-z]+$/.test(id ?? ''))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [name, op] of operations) expect(op.summary, name).toBeTruthy();
  });

  it('has examples for every operation, and each matches its schema', () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    const check = (name: string, media: Media | undefined) => {
      expect(media?.example, `${name}: example`).toBeDefined();
      const validate = ajv.compile({ ...media!.schema, components: doc.components });
      expect(validate(media!.example), `${name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    };
    for (const [name, op] of operations) {
      const json = op.requestBody?.content['application/json'];
      if (json?.schema && Object.keys(json.schema).length) check(`${name} request`, json);
      const success = Object.entries(op.responses).filter(([status, r]) => status.startsWith('2') && r.content);
      expect(success.length, name).toBeGreaterThan(0);
      for (const [status, response] of success) {
        const binary = response.content!['application/octet-stream'];
        if (binary) expect(binary.schema, `${name} ${status}`).toEqual({ type: 'string', format: 'binary' });
        else check(`${name} ${status}`, response.content!['application/json']);
      }
    }
  });

  it('documents the error answers with the error schema and its code enum', () => {
    const errorRef = { $ref: '#/components/schemas/Error' };
    const seen = new Set<string>();
    for (const [name, op] of operations) {
      const statuses = Object.keys(op.responses);
      if (op.security?.length !== 0) expect(statuses, name).toEqual(expect.arrayContaining(['401', '429']));
      if (name.includes('{id}')) expect(statuses, name).toContain('404');
      if (op.requestBody) expect(statuses, name).toContain('413');
      for (const [status, response] of Object.entries(op.responses)) {
        if (Number(status) < 400) continue;
        seen.add(status);
        expect(response.content?.['application/json']?.schema, `${name} ${status}`).toEqual(errorRef);
        expect(response.description, `${name} ${status}`).not.toBe('Default Response');
      }
    }
    expect([...seen]).toEqual(expect.arrayContaining(['401', '403', '404', '409', '413', '422', '429']));
    expect(doc.components.schemas.Error!.properties!.error.properties.code.enum).toEqual([...API_ERROR_CODES]);
  });

  it('documents the live events as text/event-stream', () => {
    const events = doc.paths['/v1/jobs/{id}/events']!.get!.responses['200']!.content!;
    expect(Object.keys(events)).toEqual(['application/json', 'text/event-stream']);
    expect(events['text/event-stream']!.example).toMatch(/^id: 1\nevent: created\ndata: \{/);
  });

  it("documents each job event type with its own data schema", () => {
    const event = doc.components.schemas.JobEvent as { oneOf?: { properties: { type: { const: string }; data: { properties: Record<string, unknown>; required?: string[] } } }[] };
    expect(event.oneOf?.map((e) => e.properties.type.const)).toEqual([...JOB_EVENT_TYPES]);
    const data = (type: string) => event.oneOf!.find((e) => e.properties.type.const === type)!.properties.data;
    expect(Object.keys(data('evaluated').properties).sort()).toEqual(['checkpoint_id', 'epoch', 'knn_accuracy', 'probe_accuracy', 'step']);
    expect(data('collapsed').required).toEqual(expect.arrayContaining(['step', 'feature_std', 'threshold', 'steps']));
    const job = doc.components.schemas.Job!.properties!;
    expect(Object.keys(job)).toEqual(expect.arrayContaining(['early_stopping', 'collapse', 'best_checkpoint_id']));
  });

  it('documents the metadata filter in the deepObject form, which the API accepts', async () => {
    const param = doc.paths['/v1/jobs']!.get!.parameters!.find((p) => p.name === 'metadata');
    expect(param).toMatchObject({ in: 'query', style: 'deepObject', schema: { type: 'object' } });
    const key = await t.current.createKey('openapi-metadata');
    const dataset = await insertDataset(t.current.db, key.project_id);
    const create = (team: string) =>
      fetch(`${t.current.url}/v1/jobs`, {
        method: 'POST',
        headers: { ...bearer(key), 'content-type': 'application/json' },
        body: JSON.stringify({ dataset_id: dataset.id, metadata: { team } }),
      }).then((r) => r.json() as Promise<{ id: string }>);
    const vision = await create('vision');
    await create('audio');
    const list = async (query: string) =>
      ((await (await fetch(`${t.current.url}/v1/jobs?${query}`, { headers: bearer(key) })).json()) as { data: { id: string }[] }).data.map((j) => j.id);
    expect(await list('metadata%5Bteam%5D=vision')).toEqual([vision.id]);
    expect(await list('metadata[team]=vision')).toEqual([vision.id]);
    expect(await list('metadata.team=vision')).toEqual([vision.id]);
  });
});
