import { addJobEvent, transitionJob } from '@moco/db';
import { MocoApiError, MocoClient, MocoConnectionError } from '@moco/sdk';
import { beforeAll, describe, expect, it } from 'vitest';
import { insertDataset } from '../../apps/api/src/testing/fixtures.js';
import { useTestApp } from '../../apps/api/src/testing/test-app.js';
import { startFlakyProxy } from './flaky-proxy.js';
import { idxArchive, loadFashionMnist } from '@moco/data';

// The SDK against the real API (real Postgres, Redis, S3 protocol), through a proxy that fails on purpose.

describe('MocoClient', () => {
  const t = useTestApp();
  let client: MocoClient;
  let apiKey: string;
  let projectId: string;
  beforeAll(async () => {
    const key = await t.current.createKey('sdk');
    apiKey = key.key;
    projectId = key.project_id;
    client = new MocoClient({ baseUrl: t.current.url, apiKey, retryDelayMs: 10 });
  });

  it('uploads a dataset from bytes with progress, then gets and lists it', async () => {
    const archive = await idxArchive(await loadFashionMnist('test', { limit: 64 }), 't10k');
    const progress: number[] = [];
    const ds = await client.datasets.upload(archive, { name: 'tiny', filename: 'tiny.tar', onProgress: (sent) => progress.push(sent) });
    expect(ds).toMatchObject({ status: 'ready', image_count: 64, height: 28, width: 28, channels: 1, labelled: true });
    expect(progress.at(-1)).toBe(archive.byteLength);
    expect((await client.datasets.get(ds.id)).id).toBe(ds.id);
    const listed = [];
    for await (const d of client.datasets.list()) listed.push(d.id);
    expect(listed).toContain(ds.id);
  });

  it('throws typed API errors carrying code and param', async () => {
    const ds = await insertDataset(t.current.db, projectId);
    const err = await client.jobs.create({ dataset_id: ds.id, hyperparameters: { K: 10, batch_size: 64 } }).catch((e) => e);
    expect(err).toBeInstanceOf(MocoApiError);
    expect(err).toMatchObject({ status: 400, code: 'invalid_parameter', param: 'hyperparameters.K' });
    const missing = await client.jobs.get('job_00000000000000000000000000000000').catch((e) => e);
    expect(missing).toMatchObject({ status: 404, code: 'not_found' });
    const badKey = new MocoClient({ baseUrl: t.current.url, apiKey: 'mk_nope' });
    await expect(badKey.jobs.get('x')).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
  });

  it('retries 5xx and resets, and a create whose answer was lost makes one job', async () => {
    const ds = await insertDataset(t.current.db, projectId, { imageCount: 512 });
    // Request 0: 503; 1: reset; 2: the create reaches the API but the answer is dropped; 3: passes.
    const faults = ['503', 'reset', 'drop-response'] as const;
    const proxy = await startFlakyProxy(t.current.url, (n) => faults[n] ?? 'pass');
    try {
      const flaky = new MocoClient({ baseUrl: proxy.url, apiKey, retryDelayMs: 10 });
      const job = await flaky.jobs.create({ dataset_id: ds.id, hyperparameters: { batch_size: 64, K: 256 }, metadata: { run: 'retry' } });
      expect(proxy.seen).toHaveLength(4);
      const jobs = await t.current.db.job.findMany({ where: { datasetId: ds.id } });
      expect(jobs.map((j) => j.id)).toEqual([job.id]);
    } finally {
      await proxy.close();
    }
  });

  it('gives up with a connection error after its retries', async () => {
    const proxy = await startFlakyProxy(t.current.url, () => 'reset');
    try {
      const flaky = new MocoClient({ baseUrl: proxy.url, apiKey, retryDelayMs: 5, maxRetries: 2 });
      await expect(flaky.jobs.get('job_x')).rejects.toBeInstanceOf(MocoConnectionError);
      expect(proxy.seen).toHaveLength(3);
    } finally {
      await proxy.close();
    }
  });

  it('lists jobs page by page with filters, and honours an abort signal', async () => {
    const ds = await insertDataset(t.current.db, projectId, { imageCount: 512 });
    const ids = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await client.jobs.create({ dataset_id: ds.id, hyperparameters: { batch_size: 64, K: 256 }, metadata: { batch: 'pages' } })).id);
    }
    const seen = [];
    for await (const job of client.jobs.list({ metadata: { batch: 'pages' }, pageSize: 2 })) seen.push(job.id);
    expect(seen).toEqual([...ids].reverse());
    const aborted = new AbortController();
    aborted.abort(new Error('caller gave up'));
    await expect(client.jobs.get(ids[0]!, { signal: aborted.signal })).rejects.toThrow('caller gave up');
  });

  it('follows the live event stream to the end, and wait() returns the finished job', async () => {
    const ds = await insertDataset(t.current.db, projectId, { imageCount: 512 });
    const job = await client.jobs.create({ dataset_id: ds.id, hyperparameters: { batch_size: 64, K: 256 } });
    const types: string[] = [];
    let following!: () => void;
    const streaming = new Promise<void>((resolve) => (following = resolve));
    const waiting = client.jobs.wait(job.id, {
      onItem: (item) => {
        if (item.kind === 'event') types.push(item.event.type);
        following();
      },
    });
    // Play the worker's part once wait() follows the stream (had the job finished before wait() looked,
    // it would rightly return at once): the stream must deliver these as they commit.
    await streaming;
    const db = t.current.db;
    await transitionJob(db, job.id, { from: ['queued'], to: 'running', event: { type: 'started', message: 'started', data: { attempt: 1, worker_id: 'test-worker' } } });
    await db.metric.create({ data: { jobId: job.id, name: 'loss', step: 1, epoch: 1, value: 7.5 } });
    await addJobEvent(db, job.id, { type: 'epoch_completed', message: 'epoch 1', data: { epoch: 1, step: 1, loss: 5.4, lr: 0.03, images_per_s: 100, seconds: 1, knn_accuracy: null, probe_accuracy: null } });
    await transitionJob(db, job.id, { from: ['running'], to: 'succeeded', event: { type: 'succeeded', message: 'done', data: { step: 1, checkpoint_id: null } } });
    const done = await waiting;
    expect(done.status).toBe('succeeded');
    expect(types).toEqual(['created', 'started', 'epoch_completed', 'succeeded']);
    const metrics = await client.jobs.metrics(job.id, { names: ['loss'] });
    expect(metrics.data).toEqual([{ name: 'loss', points: [[1, 7.5]] }]);

    // Following it again from its last event ends at once instead of reconnecting forever.
    const lastId = (await client.jobs.eventPage(job.id, { limit: 100 })).data.at(-1)!.id;
    const again: unknown[] = [];
    for await (const item of client.jobs.events(job.id, { after: lastId, signal: AbortSignal.timeout(20_000) })) again.push(item);
    expect(again).toEqual([]);
  });

});
