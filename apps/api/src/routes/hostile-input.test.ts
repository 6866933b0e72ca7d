import { beforeAll, describe, expect, it } from 'vitest';
import type { CreatedKey } from '../keys/key-service.js';
import { insertCheckpoint, insertDataset } from '../testing/fixtures.js';
import { rawExchange } from '../testing/raw-http.js';
import { bearer, useTestApp } from '../testing/test-app.js';

// Regressions of the hardening issue: inputs that reached Postgres or Fastify's defaults and came
// back as 500s, or as errors in a shape of their own.

const t = useTestApp();
let key: CreatedKey;
let datasetId: string;
let jobId: string;

const ERROR_SHAPE = { error: { code: expect.any(String), message: expect.any(String), param: expect.toBeOneOf([expect.any(String), null]) } };

beforeAll(async () => {
  key = await t.current.createKey('hostile');
  datasetId = (await insertDataset(t.current.db, key.project_id)).id;
  const res = await t.current.app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(key), payload: { dataset_id: datasetId } });
  jobId = res.json().id;
});

const get = (url: string, headers: Record<string, string> = {}) => t.current.app.inject({ url, headers: { ...bearer(key), ...headers } });
const postJob = (payload: object) => t.current.app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(key), payload });

describe('strings Postgres cannot store', () => {
  it('refuses NUL in an id, a cursor, a metadata filter or a metric name with 400 naming it', async () => {
    for (const [url, param] of [
      ['/v1/jobs/%00', 'id'],
      ['/v1/datasets/a%00b', 'id'],
      ['/v1/jobs?after=%00', 'after'],
      ['/v1/datasets?after=%00', 'after'],
      [`/v1/jobs/${jobId}/checkpoints?after=%00`, 'after'],
      ['/v1/jobs?metadata.team=%00', 'metadata.team'],
      ['/v1/jobs?metadata.%00=x', 'metadata.\u0000'],
      [`/v1/jobs/${jobId}/metrics?name=loss%00`, 'name'],
    ] as const) {
      const res = await get(url);
      expect(res.statusCode, url).toBe(400);
      expect(res.json(), url).toMatchObject({ error: { code: 'invalid_parameter', param } });
    }
  });

  it('refuses NUL and unpaired surrogates in JSON bodies, naming the field', async () => {
    const cases: [object, string][] = [
      [{ from_checkpoint_id: '\u0000' }, 'from_checkpoint_id'],
      [{ dataset_id: datasetId, metadata: { team: 'a\u0000b' } }, 'metadata.team'],
      [{ dataset_id: datasetId, metadata: { team: '\ud800' } }, 'metadata.team'],
      [{ dataset_id: `${datasetId}\udfff` }, 'dataset_id'],
    ];
    for (const [payload, param] of cases) {
      const res = await postJob(payload);
      expect(res.statusCode, param).toBe(400);
      expect(res.json(), param).toMatchObject({ error: { code: 'invalid_parameter', param } });
    }
    const promote = await t.current.app.inject({ method: 'POST', url: '/v1/models', headers: bearer(key), payload: { checkpoint_id: '\u0000', alias: 'x' } });
    expect(promote.json()).toMatchObject({ error: { code: 'invalid_parameter', param: 'checkpoint_id' } });
  });
});

describe('job size', () => {
  it('refuses epochs whose total step count overflows the step columns, naming hyperparameters.epochs', async () => {
    const huge = await insertDataset(t.current.db, key.project_id, { imageCount: 2_000_000_000 });
    const res = await postJob({ dataset_id: huge.id, hyperparameters: { epochs: 10, batch_size: 8 } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: { code: 'invalid_parameter', param: 'hyperparameters.epochs', message: expect.stringMatching(/steps/) } });
    // Continuing a checkpoint is held to the same bound.
    const job = (await postJob({ dataset_id: huge.id, hyperparameters: { epochs: 1, batch_size: 8 } })).json();
    const checkpointId = await insertCheckpoint(t.current.db, job, 10);
    const more = await postJob({ from_checkpoint_id: checkpointId, hyperparameters: { epochs: 100 } });
    expect(more.json()).toMatchObject({ error: { param: 'hyperparameters.epochs' } });
  });
});

describe('steps in queries', () => {
  it('refuses a step beyond the 32-bit step columns with 400 naming it', async () => {
    for (const [query, param] of [
      ['metrics?from_step=2147483648', 'from_step'],
      ['metrics?to_step=4294967296', 'to_step'],
    ] as const) {
      const res = await get(`/v1/jobs/${jobId}/${query}`);
      expect(res.statusCode, query).toBe(400);
      expect(res.json(), query).toMatchObject({ error: { code: 'invalid_parameter', param } });
    }
    const stream = await get(`/v1/jobs/${jobId}/events?metrics_after_step=2147483647`, { accept: 'text/event-stream' });
    expect(stream.json()).toMatchObject({ error: { code: 'invalid_parameter', param: 'metrics_after_step' } });
  });
});

describe('dataset uploads', () => {
  it('reads a text/plain body as the dataset file: 422 invalid_dataset, not 500', async () => {
    const res = await t.current.app.inject({
      method: 'POST',
      url: '/v1/datasets',
      headers: { ...bearer(key), 'content-type': 'text/plain' },
      payload: 'not an archive',
    });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ error: { code: 'invalid_dataset' } });
  });
});

describe('event stream resume', () => {
  it('reads Last-Event-ID as ?after= is read: the same 400 for a value out of range or not an id', async () => {
    for (const bad of ['99999999999999999999', '1e3', '-1', 'abc', '']) {
      const asHeader = await get(`/v1/jobs/${jobId}/events`, { accept: 'text/event-stream', 'last-event-id': bad });
      const asQuery = await get(`/v1/jobs/${jobId}/events?after=${bad}`, { accept: 'text/event-stream' });
      expect([asHeader.statusCode, asQuery.statusCode], bad).toEqual([400, 400]);
      expect(asHeader.json(), bad).toMatchObject({ error: { code: 'invalid_parameter', param: 'last-event-id' } });
      expect(asQuery.json(), bad).toMatchObject({ error: { code: 'invalid_parameter', param: 'after' } });
    }
  });
});

describe('one error shape', () => {
  it("answers Fastify's router errors (414 long parameter, 400 bad URL) in the error shape", async () => {
    const long = await get(`/v1/jobs/${'a'.repeat(200)}`);
    expect(long.statusCode).toBe(414);
    expect(long.json()).toEqual({ error: { code: 'uri_too_long', message: expect.any(String), param: null } });
    const badUrl = await get('/v1/jobs/%zz');
    expect(badUrl.statusCode).toBe(400);
    expect(badUrl.json()).toEqual({ error: { code: 'invalid_request', message: expect.any(String), param: null } });
  });

  it("answers what Node's HTTP parser refuses in the error shape", async () => {
    const host = 'Host: 127.0.0.1\r\n';
    for (const [request, status] of [
      ['GARBAGE\r\n\r\n', 400],
      [`GET /healthz HTTP/1.1\r\n${host}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
      [`POST /v1/jobs HTTP/1.1\r\n${host}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
      ['GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n', 400], // no Host
      [`POST /v1/jobs HTTP/1.1\r\n${host}Expect: teapot\r\nContent-Length: 2\r\n\r\n{}`, 417],
    ] as const) {
      const { responses } = await rawExchange(t.current.url, (s) => void s.write(request), 10_000);
      expect(responses.map((r) => r.status), request.slice(0, 40)).toEqual([status]);
      expect(JSON.parse(responses[0]!.body), request.slice(0, 40)).toMatchObject(ERROR_SHAPE);
    }
  });
});
