import { enqueueTraining } from '@moco/queue';
import { createObjectStore } from '@moco/storage';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../app.js';
import { useTestApp } from '../../testing/test-app.js';

const t = useTestApp();

describe('operations endpoints', () => {
  it('healthz answers, readyz checks Postgres, Redis and the store', async () => {
    const { app } = t.current;
    expect((await app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ok', checks: { postgres: 'ok', redis: 'ok', storage: 'ok' } });
  });

  it('readyz is 503 naming the failed dependency (a missing bucket)', async () => {
    const { db, queue, config, s3 } = t.current;
    const store = createObjectStore({ kind: 's3', ...s3, bucket: 'no-such-bucket' });
    const app = await buildApp({ db, queue, config, store, logger: pino({ level: 'silent' }) });
    try {
      const res = await app.inject({ url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ status: 'unavailable', checks: { postgres: 'ok', redis: 'ok', storage: 'failed' } });
    } finally {
      await app.close();
    }
  });

  it('queue-depth counts the training messages that need a worker, waiting and running alike', async () => {
    const { app, queue } = t.current;
    expect((await app.inject({ url: '/queue-depth' })).json()).toEqual({ waiting: 0, prioritized: 0, delayed: 0, active: 0, demand: 0 });
    await enqueueTraining(queue, 'job_depth_1');
    await enqueueTraining(queue, 'job_depth_2');
    await queue.add('train', { jobId: 'job_depth_3' }, { jobId: 'job_depth_3', delay: 60_000 });
    const res = await app.inject({ url: '/queue-depth' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ waiting: 2, prioritized: 0, delayed: 1, active: 0, demand: 3 });
    await queue.obliterate({ force: true });
  });

  it('serves Prometheus metrics with request durations by route', async () => {
    const { app } = t.current;
    await app.inject({ url: '/healthz' });
    const res = await app.inject({ url: '/metrics' });
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toMatch(/http_request_duration_seconds_count\{method="GET",route="\/healthz",status_code="200"\} [1-9]/);
    expect(res.body).toContain('moco_jobs_created_total');
    expect(res.body).toContain('process_cpu_user_seconds_total');
  });

  it('serves an OpenAPI document listing the routes', async () => {
    const res = await t.current.app.inject({ url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/healthz',
        '/readyz',
        '/v1/datasets',
        '/v1/datasets/{id}',
        '/v1/jobs',
        '/v1/jobs/{id}',
        '/v1/jobs/{id}/cancel',
        '/v1/jobs/{id}/events',
        '/v1/jobs/{id}/metrics',
        '/v1/jobs/{id}/checkpoints',
      ]),
    );
    expect(doc.paths['/v1/datasets'].post.requestBody.content).toHaveProperty('application/octet-stream');
    expect(doc.paths['/v1/jobs'].post.requestBody.content['application/json'].schema).toBeDefined();
    expect(doc.components.schemas).toHaveProperty('Job');
    expect((await t.current.app.inject({ url: '/docs' })).statusCode).toBeLessThan(400);
  });

  it('answers unknown routes with the error shape and echoes request ids', async () => {
    const res = await t.current.app.inject({ url: '/nope', headers: { 'x-request-id': 'trace-123' } });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'not_found', message: 'no route GET /nope', param: null } });
    expect(res.headers['x-request-id']).toBe('trace-123');
    const generated = await t.current.app.inject({ url: '/healthz', headers: { 'x-request-id': 'bad id with spaces' } });
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
