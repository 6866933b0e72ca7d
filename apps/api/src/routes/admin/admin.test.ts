import { transitionJob } from '@moco/db';
import { createRedis, TRAINING_QUEUE } from '@moco/queue';
import { Worker } from 'bullmq';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CreatedKey } from '../../keys/key-service.js';
import { insertCheckpoint, insertDataset } from '../../testing/fixtures.js';
import { bearer, REDIS_URL, useTestApp } from '../../testing/test-app.js';

const t = useTestApp();
let admin: CreatedKey;
let alice: CreatedKey;
let bob: CreatedKey;

async function call(k: CreatedKey, url: string, method: 'GET' | 'POST' = 'GET', payload?: object) {
  const res = await t.current.app.inject({ method, url, headers: bearer(k), ...(payload && { payload }) });
  return { status: res.statusCode, body: res.json() };
}

/** A job of alice's, queued (and so enqueued) by the API. */
async function aliceJob(): Promise<{ id: string; project_id: string }> {
  const datasetId = (await insertDataset(t.current.db, alice.project_id)).id;
  const res = await call(alice, '/v1/jobs', 'POST', { dataset_id: datasetId, hyperparameters: { batch_size: 64, K: 256, epochs: 2 } });
  expect(res.status).toBe(201);
  return res.body;
}

beforeAll(async () => {
  [admin, alice, bob] = await Promise.all([t.current.createKey('operators', { admin: true }), t.current.createKey('alice'), t.current.createKey('bob')]);
});

describe('admin routes', () => {
  it('answer 403 forbidden to member keys and 401 without a key', async () => {
    for (const url of ['/v1/admin/queue', '/v1/admin/projects']) {
      const res = await call(alice, url);
      expect(res.status, url).toBe(403);
      expect(res.body.error).toMatchObject({ code: 'forbidden', message: 'this route needs an admin key' });
      expect((await t.current.app.inject({ url })).statusCode, url).toBe(401);
    }
  });

  it('list every project by name', async () => {
    const { status, body } = await call(admin, '/v1/admin/projects');
    expect(status).toBe(200);
    expect(body.data.map((p: { name: string }) => p.name)).toEqual(['alice', 'bob', 'operators']);
    expect(body.data[0]).toEqual({ id: alice.project_id, name: 'alice', created_at: expect.any(String) });
  });

  it('report the queue counts and the workers connected to the queue', async () => {
    const { id } = await aliceJob();
    const idle = await call(admin, '/v1/admin/queue');
    expect(idle.status).toBe(200);
    expect(idle.body).toMatchObject({ queue: TRAINING_QUEUE, waiting: 1, active: 0, delayed: 0, failed: 0, completed: 0, workers: [] });

    // A worker that connects but takes nothing (autorun off), so the message stays waiting.
    const connection = createRedis(REDIS_URL);
    const worker = new Worker(TRAINING_QUEUE, null, { connection, prefix: t.current.config.QUEUE_PREFIX, name: 'gpu-7', autorun: false });
    try {
      await worker.waitUntilReady();
      const busy = await call(admin, '/v1/admin/queue');
      expect(busy.body.workers).toEqual([{ name: 'gpu-7', addr: expect.stringMatching(/^127\.0\.0\.1:\d+$/), age_s: expect.any(Number), idle_s: expect.any(Number) }]);
      expect(busy.body.waiting).toBe(1);
    } finally {
      await worker.close();
      connection.disconnect();
    }
    await t.current.queue.remove(id);
  });

  it("let admin keys cancel another project's job, while other projects' keys get 404", async () => {
    const queued = await aliceJob();
    expect((await call(bob, `/v1/jobs/${queued.id}/cancel`, 'POST')).status).toBe(404);
    const cancelled = await call(admin, `/v1/jobs/${queued.id}/cancel`, 'POST');
    expect(cancelled).toMatchObject({ status: 200, body: { id: queued.id, project_id: alice.project_id, status: 'cancelled' } });
    expect(await t.current.queue.getJob(queued.id)).toBeUndefined();

    const running = await aliceJob();
    await transitionJob(t.current.db, running.id, { from: ['queued'], to: 'running', event: { type: 'started', message: 'started', data: { attempt: 1, worker_id: 'test-worker' } } });
    const requested = await call(admin, `/v1/jobs/${running.id}/cancel`, 'POST');
    expect(requested).toMatchObject({ status: 202, body: { status: 'cancelling' } });
  });

  it("let admin keys promote another project's checkpoint under that project's alias, and list every project's models", async () => {
    const job = await aliceJob();
    const checkpointId = await insertCheckpoint(t.current.db, job, 5);
    expect((await call(bob, '/v1/models', 'POST', { checkpoint_id: checkpointId, alias: 'production' })).status).toBe(404);
    const promoted = await call(admin, '/v1/models', 'POST', { checkpoint_id: checkpointId, alias: 'production' });
    expect(promoted).toMatchObject({ status: 200, body: { id: checkpointId, project_id: alice.project_id, aliases: ['production'] } });
    expect((await call(alice, '/v1/models')).body.data.map((m: { id: string }) => m.id)).toEqual([checkpointId]);
    expect(await t.current.db.modelAlias.count({ where: { projectId: admin.project_id } })).toBe(0);
    const missing = await call(admin, '/v1/models', 'POST', { checkpoint_id: 'ckpt_nope', alias: 'production' });
    expect(missing).toMatchObject({ status: 404, body: { error: { code: 'not_found', param: 'checkpoint_id' } } });

    expect((await call(admin, '/v1/models')).body.data.map((m: { id: string }) => m.id)).toEqual([checkpointId]);
    expect((await call(admin, `/v1/models?project_id=${bob.project_id}`)).body.data).toEqual([]);
    expect((await call(admin, `/v1/models?project_id=${alice.project_id}`)).body.data).toHaveLength(1);
    expect((await call(bob, '/v1/models')).body.data).toEqual([]);
    expect((await call(bob, `/v1/models?project_id=${alice.project_id}`)).status).toBe(404);
  });
});
