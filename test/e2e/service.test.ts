import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { idxArchive, loadFashionMnist } from '@moco/data';
import type { Embedder } from '@moco/embedder';
import { initBackend } from '@moco/moco';
import { MocoClient, type JobStreamItem } from '@moco/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeImage } from '../../libs/data/src/test-fixtures.js';
import { useTestApp } from '../../apps/api/src/testing/test-app.js';
import { startWorkerProcess, workerEnvFrom, type WorkerProcess } from '../support/worker-process.js';
import { startAppEmbedder } from '../support/in-process-embedder.js';

// The product path, end to end: the SDK uploads Fashion-MNIST through the API (real Postgres, Redis,
// S3 protocol), creates a job, a real worker process trains it, and the results are read back
// through the API; its best checkpoint is promoted and served; then a second job continues the
// final checkpoint for one more epoch.

const SMALL = { width: 4, dim: 16, K: 256, batch_size: 32, bn_splits: 4, epochs: 2, knn_k: 20 };

describe('the service end to end', () => {
  const t = useTestApp({ MAX_UPLOAD_BYTES: String(16 * 1024 ** 2), MAX_DATASET_BYTES: String(64 * 1024 ** 2) });
  let worker: WorkerProcess;
  let embedder: Embedder;
  let client: MocoClient;
  let cacheDir: string;

  beforeAll(async () => {
    cacheDir = await mkdtemp(path.join(tmpdir(), 'moco-e2e-cache-'));
    worker = startWorkerProcess({ ...workerEnvFrom(t.current.config), WORKER_CACHE_DIR: cacheDir });
    await initBackend({ prefer: 'cpu' });
    embedder = await startAppEmbedder(t.current);
    client = new MocoClient({ baseUrl: t.current.url, apiKey: (await t.current.createKey('e2e')).key, grpcAddress: embedder.address });
  });
  afterAll(async () => {
    client?.close();
    await embedder?.close();
    await worker?.stop();
    await rm(cacheDir, { recursive: true, force: true });
  });

  it('uploads, trains to succeeded with every metric step and checkpoints, and continues a checkpoint', async () => {
    const train = await client.datasets.upload(await idxArchive(await loadFashionMnist('train', { limit: 256 })), { name: 'fm-train' });
    const test = await client.datasets.upload(await idxArchive(await loadFashionMnist('test', { limit: 200 }), 't10k'), { name: 'fm-test' });
    expect(train).toMatchObject({ status: 'ready', image_count: 256, labelled: true, height: 28, channels: 1 });

    const early_stopping = { metric: 'knn_accuracy' as const, patience: 3 };
    const job = await client.jobs.create({ dataset_id: train.id, eval_dataset_id: test.id, hyperparameters: SMALL, seed: 3, checkpoint_every: 4, early_stopping });
    expect(job).toMatchObject({ early_stopping: { ...early_stopping, min_delta: 0 }, collapse: null, best_checkpoint_id: null });
    expect(job.progress.total_steps).toBe(16);
    const items: JobStreamItem[] = [];
    const done = await client.jobs.wait(job.id, { onItem: (item) => items.push(item) });
    expect(done.status, worker.logs.slice(-20).join('\n')).toBe('succeeded');
    expect(done.progress).toMatchObject({ step: 16, epoch: 2, fraction: 1 });

    const types = items.flatMap((i) => (i.kind === 'event' ? [i.event.type] : []));
    // The create answer's warnings (settings tuned for larger datasets) follow "created" as events.
    const warned = job.warnings.length;
    expect(types.slice(0, 3 + warned)).toEqual(['created', ...Array<string>(warned).fill('warning'), 'started', 'dataset_loaded']);
    expect(items.flatMap((i) => (i.kind === 'event' && i.event.type === 'warning' ? [i.event.data] : []))).toEqual(job.warnings);
    expect(types.filter((x) => x === 'epoch_completed')).toHaveLength(2);
    expect(types.filter((x) => x === 'evaluated')).toHaveLength(2);
    expect(types.at(-1)).toBe('succeeded');
    expect(items.some((i) => i.kind === 'metrics')).toBe(true);

    const metrics = await client.jobs.metrics(job.id, { names: ['loss', 'knn_accuracy'] });
    const loss = metrics.data.find((s) => s.name === 'loss')!;
    expect(loss.points.map(([step]) => step)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    const knn = metrics.data.find((s) => s.name === 'knn_accuracy')!;
    expect(knn.points.map(([step]) => step)).toEqual([8, 16]);
    expect(knn.points[1]![1]!).toBeGreaterThan(0.3); // 10 classes: chance is 0.1

    // Every job says "encoder vs raw pixels" in numbers: the baselines at step 0, the probe per epoch.
    const evaluation = await client.jobs.metrics(job.id, { names: ['probe_accuracy', 'baseline_raw_knn_accuracy', 'baseline_random_knn_accuracy'] });
    const points = Object.fromEntries(evaluation.data.map((s) => [s.name, s.points.map(([step]) => step)]));
    expect(points).toEqual({ probe_accuracy: [8, 16], baseline_raw_knn_accuracy: [0], baseline_random_knn_accuracy: [0] });

    const checkpoints = [];
    for await (const c of client.jobs.checkpoints(job.id)) checkpoints.push(c);
    expect(checkpoints.map((c) => [c.step, c.final])).toEqual([[4, false], [8, false], [12, false], [16, true]]);
    // The best evaluation's checkpoint is promoted by its id, and served.
    expect([checkpoints[1]!.id, checkpoints[3]!.id]).toContain(done.best_checkpoint_id);
    const model = await client.models.promote({ checkpoint_id: done.best_checkpoint_id!, alias: 'best' }, { waitUntilServed: true });
    expect(model.id).toBe(done.best_checkpoint_id);
    const png = await encodeImage(new Uint8Array(28 * 28).map((_, i) => (i * 37) % 256), { width: 28, height: 28, channels: 1 });
    expect((await client.embeddings.embed([png], { model: 'best' })).modelId).toBe(done.best_checkpoint_id);
    const downloads = await mkdtemp(path.join(tmpdir(), 'moco-e2e-downloads-'));
    for (const c of checkpoints) {
      const saved = await client.checkpoints.exportToFile(c.id, path.join(downloads, `${c.id}.mocotens`), { format: 'mocotens' });
      expect(saved.bytes).toBe(c.bytes);
    }
    await rm(downloads, { recursive: true });

    const more = await client.jobs.create({ from_checkpoint_id: checkpoints.at(-1)!.id, hyperparameters: { epochs: 3 } });
    const continued = await client.jobs.wait(more.id);
    expect(continued.status).toBe('succeeded');
    expect(continued.progress).toMatchObject({ step: 24, epoch: 3 });
    const steps = (await client.jobs.metrics(more.id, { names: ['loss'] })).data[0]!.points.map(([s]) => s);
    expect(steps).toEqual([17, 18, 19, 20, 21, 22, 23, 24]);
  }, 300_000);
});
