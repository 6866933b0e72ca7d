import { createRedis, createTrainingQueue } from '@moco/queue';
import { newId, transitionJob } from '@moco/db';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../app.js';
import type { CreatedKey } from '../../keys/key-service.js';
import { insertDataset } from '../../testing/fixtures.js';
import { bearer, useTestApp } from '../../testing/test-app.js';

const t = useTestApp();
let key: CreatedKey;
let datasetId: string;
// 1000 images: small hyperparameters keep the defaults' cross-checks out of the way where unneeded.
const small = { batch_size: 64, K: 256, epochs: 2 };

beforeAll(async () => {
  key = await t.current.createKey('jobs');
  datasetId = (await insertDataset(t.current.db, key.project_id)).id;
});

function post(body: unknown, headers: Record<string, string> = {}, k: CreatedKey = key) {
  return t.current.app.inject({ method: 'POST', url: '/v1/jobs', headers: { ...bearer(k), ...headers }, payload: body as object });
}

async function get(url: string, k: CreatedKey = key) {
  const res = await t.current.app.inject({ url, headers: bearer(k) });
  return res.json();
}

describe('POST /v1/jobs', () => {
  it('resolves the recipe defaults for the dataset size, stores the job queued and enqueues it', async () => {
    const res = await post({ dataset_id: datasetId, metadata: { team: 'vision' } });
    expect(res.statusCode).toBe(201);
    const job = res.json();
    expect(job).toMatchObject({
      project_id: key.project_id,
      dataset_id: datasetId,
      eval_dataset_id: null,
      status: 'queued',
      metadata: { team: 'vision' },
      checkpoint_every: 500,
      // The CIFAR demo recipe scaled to 1000 images (libs/contracts DATASET_RULE).
      hyperparameters: { encoder: 'resnet18', stem: 'cifar', batch_size: 32, bn_splits: 4, K: 64, lr: 0.06, symmetric: true, epochs: 626, knn_k: 100, augmentation: 'gray', image_size: 28 },
      progress: { step: 0, epoch: 0, fraction: 0 },
      error: null,
      warnings: [],
    });
    expect(job.progress.total_steps).toBe(626 * Math.floor(1000 / 32));
    expect(Number.isInteger(job.seed)).toBe(true);
    const message = await t.current.queue.getJob(job.id);
    expect(message?.data).toEqual({ jobId: job.id });
    const events = await get(`/v1/jobs/${job.id}/events`);
    expect(events.data.map((e: { type: string }) => e.type)).toEqual(['created']);
    const { warnings, ...resource } = job;
    expect(await get(`/v1/jobs/${job.id}`)).toEqual(resource);
  });

  it('creates a job with known-bad settings but warns in the response and in warning events', async () => {
    const body = { dataset_id: datasetId, hyperparameters: { K: 1024, batch_size: 64, bn_splits: 16, knn_k: 1000, epochs: 2 }, metadata: { case: 'warnings' } };
    const res = await post(body, { 'idempotency-key': 'bad-settings' });
    expect(res.statusCode).toBe(201);
    const job = res.json();
    const fields = ['hyperparameters.K', 'hyperparameters.knn_k', 'hyperparameters.bn_splits'];
    expect(job.warnings.map((w: { field: string }) => w.field)).toEqual(fields);
    expect(job.warnings[0].message).toMatch(/at least the dataset's 1000 images/);
    expect(job.warnings[2].message).toMatch(/leaves 4 images per BN split/);
    const events = (await get(`/v1/jobs/${job.id}/events`)).data as { type: string; message: string; data: { field?: string } }[];
    expect(events.map((e) => e.type)).toEqual(['created', 'warning', 'warning', 'warning']);
    expect(events.slice(1).map((e) => e.data.field)).toEqual(fields);
    expect(events[1]!.message).toMatch(/^hyperparameters\.K is at least/);
    // A replay answers with the same warnings.
    const again = await post(body, { 'idempotency-key': 'bad-settings' });
    expect(again.statusCode).toBe(200);
    expect(again.json().warnings).toEqual(job.warnings);
  });

  it('names the field of range, schema and cross-field errors', async () => {
    const range = await post({ dataset_id: datasetId, hyperparameters: { m: 1 } });
    expect(range.statusCode).toBe(400);
    expect(range.json().error).toMatchObject({ code: 'invalid_parameter', param: 'hyperparameters.m' });

    const unknown = await post({ dataset_id: datasetId, hyperparameters: { kk: 1 } });
    expect(unknown.json().error.param).toBe('hyperparameters');

    const cross = await post({ dataset_id: datasetId, hyperparameters: { K: 100, batch_size: 128, augmentation: 'v2' } });
    expect(cross.statusCode).toBe(400);
    const { error } = cross.json();
    expect(error.param).toMatch(/^hyperparameters\./);
    expect(error.details.map((d: { param: string }) => d.param).sort()).toEqual(['hyperparameters.K', 'hyperparameters.augmentation']);
    expect(error.message).toMatch(/hyperparameters\.K: .*hyperparameters\.augmentation: |hyperparameters\.augmentation: .*hyperparameters\.K: /);

    const tooBig = await post({ dataset_id: datasetId, hyperparameters: { batch_size: 2048, K: 4096 } });
    expect(tooBig.json().error).toMatchObject({ param: 'hyperparameters.batch_size', message: expect.stringMatching(/1000 images/) });

    const badMeta = await post({ dataset_id: datasetId, metadata: { 'bad key': 'x' } });
    expect(badMeta.json().error.param).toMatch(/^metadata/);
    const missing = await post({ hyperparameters: small });
    expect(missing.json().error).toMatchObject({ param: 'dataset_id', message: expect.stringMatching(/required/) });
    expect((await post({ dataset_id: 'ds_nope' })).json().error.param).toBe('dataset_id');
    expect(await t.current.db.job.count({ where: { projectId: key.project_id, metadata: { equals: {} } } })).toBe(0);
  });

  it('checks the eval dataset: labelled, same channels', async () => {
    const unlabelled = await insertDataset(t.current.db, key.project_id, { labelled: false, classNames: undefined });
    const rgb = await insertDataset(t.current.db, key.project_id, { channels: 3 });
    const pending = await insertDataset(t.current.db, key.project_id, { status: 'failed' });
    for (const [evalId, message] of [
      [unlabelled.id, /labelled/],
      [rgb.id, /3 channels/],
      [pending.id, /not ready/],
    ] as const) {
      const res = await post({ dataset_id: datasetId, eval_dataset_id: evalId, hyperparameters: small });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ param: 'eval_dataset_id', message: expect.stringMatching(message) });
    }
    const ok = await post({ dataset_id: datasetId, eval_dataset_id: datasetId, hyperparameters: small });
    expect(ok.json().eval_dataset_id).toBe(datasetId);
  });

  it('takes early stopping (which needs an eval dataset) and a collapse guard, with their defaults', async () => {
    const lone = await post({ dataset_id: datasetId, hyperparameters: small, early_stopping: { patience: 2 } });
    expect(lone.statusCode).toBe(400);
    expect(lone.json().error).toMatchObject({ param: 'early_stopping', message: expect.stringMatching(/eval_dataset_id/) });
    const bad = await post({ dataset_id: datasetId, hyperparameters: small, collapse: { min_feature_std: 0 } });
    expect(bad.statusCode).toBe(400);
    expect(JSON.stringify(bad.json().error)).toMatch(/collapse\.min_feature_std/);
    const ok = await post({
      dataset_id: datasetId,
      eval_dataset_id: datasetId,
      hyperparameters: small,
      early_stopping: { metric: 'probe_accuracy', patience: 2 },
      collapse: { min_feature_std: 0.01 },
    });
    expect(ok.statusCode).toBe(201);
    expect(ok.json()).toMatchObject({
      early_stopping: { metric: 'probe_accuracy', patience: 2, min_delta: 0 },
      collapse: { min_feature_std: 0.01, steps: 50 },
      best_checkpoint_id: null,
    });
    const row = await t.current.db.job.findUniqueOrThrow({ where: { id: ok.json().id } });
    expect(row).toMatchObject({ earlyStopping: { metric: 'probe_accuracy', patience: 2, min_delta: 0 }, collapse: { min_feature_std: 0.01, steps: 50 } });
  });

  it('names a dataset deleted after it was looked up (ready datasets are cached) rather than failing the insert', async () => {
    const doomed = await insertDataset(t.current.db, key.project_id);
    // Looked up (and cached as ready), then refused for its hyperparameters: no job holds the dataset.
    expect((await post({ dataset_id: doomed.id, hyperparameters: { ...small, m: 1 } })).statusCode).toBe(400);
    // Its project deleted it meanwhile (as a project deletion's cascade would).
    await t.current.db.dataset.delete({ where: { id: doomed.id } });
    const res = await post({ dataset_id: doomed.id, hyperparameters: small });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ param: 'dataset_id', message: `dataset_id: no dataset ${doomed.id} in this project` });
  });

  it('replays a repeated Idempotency-Key and refuses it for another body', async () => {
    const body = { dataset_id: datasetId, hyperparameters: small, seed: 7 };
    const first = await post(body, { 'idempotency-key': 'k-1' });
    expect(first.statusCode).toBe(201);
    // Same body in another key order: still the same request.
    const again = await post({ seed: 7, hyperparameters: { epochs: 2, K: 256, batch_size: 64 }, dataset_id: datasetId }, { 'idempotency-key': 'k-1' });
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().id).toBe(first.json().id);
    const conflict = await post({ ...body, seed: 8 }, { 'idempotency-key': 'k-1' });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json().error).toMatchObject({ code: 'idempotency_conflict', param: 'idempotency-key' });
  });

  it('creates one job for concurrent identical requests', async () => {
    const body = { dataset_id: datasetId, hyperparameters: small };
    const results = await Promise.all(Array.from({ length: 6 }, () => post(body, { 'idempotency-key': 'race' })));
    expect(new Set(results.map((r) => r.json().id)).size).toBe(1);
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    expect(await t.current.db.job.count({ where: { idempotencyKey: 'race' } })).toBe(1);
  });

  it('continues a checkpoint with new epochs and the source job settings', async () => {
    const source = (await post({ dataset_id: datasetId, hyperparameters: { ...small, lr: 0.1 }, seed: 3 })).json();
    const checkpointId = newId('ckpt');
    await t.current.db.checkpoint.create({
      data: {
        id: checkpointId,
        jobId: source.id,
        projectId: key.project_id,
        step: 30,
        epoch: 2,
        objectKey: `projects/${key.project_id}/jobs/${source.id}/checkpoints/step-000000030.mocotens`,
        bytes: 10,
        transform: {},
        encoder: {},
      },
    });
    const res = await post({ from_checkpoint_id: checkpointId, hyperparameters: { epochs: 5 } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({
      from_checkpoint_id: checkpointId,
      dataset_id: datasetId,
      seed: 3,
      hyperparameters: { ...source.hyperparameters, epochs: 5 },
      progress: { total_steps: 5 * Math.floor(1000 / 64) },
    });
    const notLater = await post({ from_checkpoint_id: checkpointId, hyperparameters: { epochs: 2 } });
    expect(notLater.json().error).toMatchObject({ param: 'hyperparameters.epochs', message: expect.stringMatching(/epoch \(2\)/) });
    const changed = await post({ from_checkpoint_id: checkpointId, hyperparameters: { epochs: 5, lr: 1 } });
    expect(changed.json().error.param).toBe('hyperparameters.lr');
    const other = await t.current.createKey('someone-else');
    expect((await post({ from_checkpoint_id: checkpointId }, {}, other)).json().error.param).toBe('from_checkpoint_id');
  });

  it('still creates the job when Redis is unreachable (the reconciler enqueues it later)', async () => {
    const { db, store, config } = t.current;
    const redis = createRedis('redis://127.0.0.1:1');
    redis.on('error', () => undefined);
    const queue = createTrainingQueue(redis, 'unreachable');
    queue.on('error', () => undefined);
    const app = await buildApp({ db, store, config, queue, logger: pino({ level: 'silent' }) });
    try {
      const [res, ready] = await Promise.all([
        app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(key), payload: { dataset_id: datasetId, hyperparameters: small } }),
        app.inject({ url: '/readyz' }),
      ]);
      expect(res.statusCode).toBe(201);
      expect((await db.job.findUniqueOrThrow({ where: { id: res.json().id } })).status).toBe('queued');
      expect(ready.statusCode).toBe(503);
      expect(ready.json().checks.redis).toBe('failed');
    } finally {
      await app.close();
      redis.disconnect();
    }
  });
});

describe('POST /v1/jobs/preview', () => {
  const preview = (body: unknown) => t.current.app.inject({ method: 'POST', url: '/v1/jobs/preview', headers: bearer(key), payload: body as object });

  it('answers what create would make of the body, and creates nothing', async () => {
    const before = await t.current.db.job.count({ where: { projectId: key.project_id } });
    const body = { dataset_id: datasetId, hyperparameters: { epochs: 3 } };
    const res = await preview(body);
    expect(res.statusCode).toBe(200);
    const answer = res.json();
    expect(await t.current.db.job.count({ where: { projectId: key.project_id } })).toBe(before);
    const job = (await post(body)).json();
    expect(answer).toEqual({
      project_id: key.project_id,
      dataset_id: datasetId,
      eval_dataset_id: null,
      hyperparameters: job.hyperparameters,
      total_steps: job.progress.total_steps,
      steps_per_epoch: job.progress.total_steps / 3,
      warnings: job.warnings,
    });
  });

  it('refuses what create refuses, naming the field', async () => {
    const res = await preview({ dataset_id: datasetId, hyperparameters: { batch_size: 2048, K: 4096 } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ param: 'hyperparameters.batch_size', message: expect.stringMatching(/1000 images/) });
    expect((await preview({ dataset_id: 'ds_nope' })).json().error.param).toBe('dataset_id');
  });
});

describe('GET /v1/jobs', () => {
  let lister: CreatedKey;
  let ids: string[];
  beforeAll(async () => {
    lister = await t.current.createKey('lister');
    const ds = await insertDataset(t.current.db, lister.project_id);
    ids = [];
    for (let i = 0; i < 7; i++) {
      const res = await post({ dataset_id: ds.id, hyperparameters: small, metadata: { team: i % 2 ? 'a' : 'b', run: String(i) } }, {}, lister);
      ids.push(res.json().id);
    }
  });

  it('pages newest first: 3 + 3 + 1, no duplicates', async () => {
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    let more = true;
    while (more) {
      const page = await get(`/v1/jobs?limit=3${cursor ? `&after=${cursor}` : ''}`, lister);
      sizes.push(page.data.length);
      seen.push(...page.data.map((j: { id: string }) => j.id));
      more = page.has_more;
      cursor = page.next_cursor;
    }
    expect(sizes).toEqual([3, 3, 1]);
    expect(cursor).toBeNull();
    expect(seen).toEqual([...ids].reverse());
  });

  it('filters by status and metadata', async () => {
    await t.current.app.inject({ method: 'POST', url: `/v1/jobs/${ids[0]}/cancel`, headers: bearer(lister) });
    const cancelled = await get('/v1/jobs?status=cancelled', lister);
    expect(cancelled.data.map((j: { id: string }) => j.id)).toEqual([ids[0]]);
    const live = await get('/v1/jobs?status=queued,running', lister);
    expect(live.data).toHaveLength(6);
    const teamA = await get('/v1/jobs?metadata.team=a', lister);
    expect(teamA.data.map((j: { id: string }) => j.id)).toEqual([ids[5], ids[3], ids[1]]);
    const both = await get('/v1/jobs?metadata.team=a&metadata.run=3', lister);
    expect(both.data.map((j: { id: string }) => j.id)).toEqual([ids[3]]);
    expect((await get('/v1/jobs?status=queued,paused', lister)).error.param).toBe('status.1');
    expect((await get('/v1/jobs?colour=red', lister)).error).toMatchObject({ code: 'invalid_parameter', param: 'colour' });
  });
});

describe('POST /v1/jobs/:id/cancel', () => {
  it('cancels a queued job at once and removes its queue message', async () => {
    const job = (await post({ dataset_id: datasetId, hyperparameters: small })).json();
    expect(await t.current.queue.getJob(job.id)).toBeDefined();
    const res = await t.current.app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel`, headers: bearer(key) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'cancelled', cancel_requested_at: expect.any(String), finished_at: expect.any(String) });
    expect(await t.current.queue.getJob(job.id)).toBeUndefined();
    const events = await get(`/v1/jobs/${job.id}/events`);
    expect(events.data.map((e: { type: string; data: { status: string } }) => [e.type, e.data.status])).toEqual([
      ['created', 'queued'],
      ['cancelled', 'cancelled'],
    ]);
    const again = await t.current.app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel`, headers: bearer(key) });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('job_finished');
  });

  it('asks the worker to stop a running job (cancelling), idempotently', async () => {
    const job = (await post({ dataset_id: datasetId, hyperparameters: small })).json();
    await transitionJob(t.current.db, job.id, { from: ['queued'], to: 'running', event: { type: 'started', message: 'started', data: { attempt: 1, worker_id: 'test-worker' } } });
    const cancel = () => t.current.app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel`, headers: bearer(key) });
    const first = await cancel();
    expect(first.statusCode).toBe(202);
    expect(first.json()).toMatchObject({ status: 'cancelling', cancel_requested_at: expect.any(String), finished_at: null });
    const second = await cancel();
    expect(second.statusCode).toBe(202);
    expect(second.json().cancel_requested_at).toBe(first.json().cancel_requested_at);
    const types = (await get(`/v1/jobs/${job.id}/events`)).data.map((e: { type: string }) => e.type);
    expect(types).toEqual(['created', 'started', 'cancel_requested']);
  });
});
