import { createDb, createTestDatabase, newId, type Db, type TestDatabase } from '@moco/db';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenModelUpdates } from './model-updates.js';
import { embeddingSpaceId, listModels, ModelError, promoteModel, resolveModel, type ModelUpdate } from './models.js';

let tdb: TestDatabase;
let db: Db;

const transform = { size: 16, channels: 3, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
const encoder = { arch: 'resnet18', stem: 'cifar', width: 4, in_channels: 3, head: 'v1', dim: 8 };

async function project(): Promise<string> {
  const id = newId('proj');
  await db.project.create({ data: { id, name: 'p' } });
  return id;
}

async function checkpoint(projectId: string, step: number): Promise<{ id: string; jobId: string }> {
  const datasetId = newId('ds');
  const jobId = newId('job');
  await db.dataset.create({ data: { id: datasetId, projectId, name: 'd', source: 'upload', uri: 'file:///d' } });
  await db.job.create({ data: { id: jobId, projectId, datasetId, hyperparameters: {}, seed: 0, checkpointEvery: 1, totalSteps: step } });
  const id = newId('ckpt');
  await db.checkpoint.create({ data: { id, jobId, projectId, step, epoch: 1, objectKey: `k/${id}`, bytes: 1, transform, encoder } });
  return { id, jobId };
}

const failure = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as ModelError);

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
});

afterAll(async () => {
  await db?.$disconnect();
  await tdb?.drop();
});

describe('promoteModel, resolveModel, listModels', () => {
  it('puts checkpoints under aliases of their own project only, and resolves aliases and ids', async () => {
    const p = await project();
    const other = await project();
    const a = await checkpoint(p, 5);
    const b = await checkpoint(p, 7);
    const foreign = await checkpoint(other, 1);

    const promoted = await promoteModel(db, { projectId: p, alias: 'production', checkpointId: a.id });
    expect(promoted).toMatchObject({ id: a.id, jobId: a.jobId, step: 5, aliases: ['production'], transform });
    expect(promoted.embeddingSpaceId).toBe(embeddingSpaceId(a.jobId, 5));
    expect(promoted.embeddingSpaceId).not.toBe(embeddingSpaceId(a.jobId, 6));
    await promoteModel(db, { projectId: p, alias: 'staging', checkpointId: a.id });
    expect((await resolveModel(db, { projectId: p })).aliases).toEqual(['production', 'staging']);

    // Moving an alias.
    await promoteModel(db, { projectId: p, alias: 'staging', checkpointId: b.id });
    expect((await resolveModel(db, { projectId: p, alias: 'staging' })).id).toBe(b.id);
    expect((await resolveModel(db, { projectId: p, modelId: a.id })).aliases).toEqual(['production']);
    expect((await listModels(db, p)).map((m) => [m.id, m.aliases])).toEqual([
      [b.id, ['staging']],
      [a.id, ['production']],
    ]);

    const foreignPromotion = await failure(promoteModel(db, { projectId: p, alias: 'x', checkpointId: foreign.id }));
    expect(foreignPromotion).toMatchObject({ code: 'not_found', param: 'checkpoint_id' });
    expect(await failure(promoteModel(db, { projectId: p, alias: 'Bad Alias', checkpointId: a.id }))).toMatchObject({
      code: 'invalid_alias',
      param: 'alias',
    });
    expect(await failure(resolveModel(db, { projectId: p, modelId: foreign.id }))).toMatchObject({ code: 'not_found', param: 'model_id' });
    expect(await failure(resolveModel(db, { projectId: other }))).toBeInstanceOf(ModelError);
    expect(await listModels(db, other)).toEqual([]);
  });
});

describe('listenModelUpdates', () => {
  it('delivers promotions, and reconnects (announcing it) after losing its connection', async () => {
    const p = await project();
    const a = await checkpoint(p, 1);
    const updates: ModelUpdate[] = [];
    let connects = 0;
    const listener = listenModelUpdates(
      tdb.url,
      { onUpdate: (u) => updates.push(u), onConnect: () => connects++ },
      { retryMs: 50 },
    );
    try {
      await listener.ready;
      await promoteModel(db, { projectId: p, alias: 'production', checkpointId: a.id });
      await expect.poll(() => updates).toEqual([{ projectId: p, alias: 'production', checkpointId: a.id }]);

      const admin = new pg.Client({ connectionString: tdb.url });
      await admin.connect();
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()`,
      );
      await admin.end();
      await expect.poll(() => connects).toBe(2);
      await promoteModel(db, { projectId: p, alias: 'staging', checkpointId: a.id });
      await expect.poll(() => updates.map((u) => u.alias)).toEqual(['production', 'staging']);
    } finally {
      await listener.close();
    }
  });
});
