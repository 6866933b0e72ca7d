import { addJobEvent, newId, notifyJobUpdate, transitionJob } from '@moco/db';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../app.js';
import type { CreatedKey } from '../../keys/key-service.js';
import { insertDataset } from '../../testing/fixtures.js';
import { bearer, useTestApp } from '../../testing/test-app.js';

const t = useTestApp();
let key: CreatedKey;
let datasetId: string;

beforeAll(async () => {
  key = await t.current.createKey('progress');
  datasetId = (await insertDataset(t.current.db, key.project_id)).id;
});

async function newJob(): Promise<string> {
  const res = await t.current.app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: bearer(key),
    payload: { dataset_id: datasetId, hyperparameters: { batch_size: 64, K: 256, epochs: 2 } },
  });
  expect(res.statusCode).toBe(201);
  return res.json().id;
}

async function get(url: string) {
  return (await t.current.app.inject({ url, headers: bearer(key) })).json();
}

/** What the worker writes per step: metric rows, then a wake-up of live readers. */
async function writeMetrics(jobId: string, rows: [name: string, step: number, value: number][]): Promise<void> {
  await t.current.db.metric.createMany({ data: rows.map(([name, step, value]) => ({ jobId, name, step, epoch: 1, value })) });
  await notifyJobUpdate(t.current.db, jobId);
}

interface SseMessage {
  id?: string;
  event?: string;
  data?: any;
}

/** Opens the SSE stream and reads messages as they come. */
async function openStream(jobId: string, opts: { headers?: Record<string, string>; query?: string; url?: string } = {}) {
  const res = await fetch(`${opts.url ?? t.current.url}/v1/jobs/${jobId}/events${opts.query ?? ''}`, {
    headers: { ...bearer(key), accept: 'text/event-stream', ...opts.headers },
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  const queue: SseMessage[] = [];
  let ended = false;
  return {
    /** The next message; undefined once the server has closed the stream. */
    async next(): Promise<SseMessage | undefined> {
      while (queue.length === 0 && !ended) {
        const { value, done } = await reader.read();
        if (done) ended = true;
        buffer += value ?? '';
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const msg: SseMessage = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const [field, ...rest] = line.split(': ');
            const value = rest.join(': ');
            if (field === 'data') msg.data = JSON.parse(value);
            else if (field === 'id' || field === 'event') msg[field] = value;
          }
          if (msg.event) queue.push(msg);
        }
      }
      return queue.shift();
    },
    cancel: () => reader.cancel(),
  };
}

describe('GET /v1/jobs/:id/events', () => {
  it('pages events by id', async () => {
    const jobId = await newJob();
    for (let i = 1; i <= 4; i++) await addJobEvent(t.current.db, jobId, { type: 'epoch_completed', message: `epoch ${i}`, data: { epoch: i, step: i, loss: 5.4, lr: 0.03, images_per_s: 100, seconds: 1, knn_accuracy: null, probe_accuracy: null } });
    const first = await get(`/v1/jobs/${jobId}/events?limit=3`);
    expect(first.data.map((e: { type: string }) => e.type)).toEqual(['created', 'epoch_completed', 'epoch_completed']);
    expect(first.has_more).toBe(true);
    const rest = await get(`/v1/jobs/${jobId}/events?limit=3&after=${first.next_cursor}`);
    expect(rest.data.map((e: { message: string }) => e.message)).toEqual(['epoch 3', 'epoch 4']);
    expect(rest).toMatchObject({ has_more: false, next_cursor: null });
    expect(rest.data[0]).toMatchObject({ job_id: jobId, data: { epoch: 3 }, created_at: expect.any(String) });
    expect(rest.data[0].id).toBeGreaterThan(first.data[2].id);
  });

  it('streams the backlog, then live events and metrics, and ends after the terminal event', async () => {
    const { db } = t.current;
    const jobId = await newJob();
    await writeMetrics(jobId, [['loss', 1, 9]]); // before the stream: not sent by default
    const stream = await openStream(jobId);
    const created = await stream.next();
    expect(created).toMatchObject({ event: 'created', data: { job_id: jobId, type: 'created' } });
    expect(created!.id).toBe(String(created!.data.id));

    // The worker's side: each of these commits and notifies on its own.
    await transitionJob(db, jobId, { from: ['queued'], to: 'running', event: { type: 'started', message: 'started', data: { attempt: 1, worker_id: 'test-worker' } } });
    expect(await stream.next()).toMatchObject({ event: 'started', data: { data: { status: 'running' } } });
    await writeMetrics(jobId, [['loss', 2, 5.5], ['lr', 2, 0.06]]);
    expect(await stream.next()).toEqual({
      event: 'metrics',
      data: { job_id: jobId, data: [{ name: 'loss', points: [[2, 5.5]] }, { name: 'lr', points: [[2, 0.06]] }] },
    });
    // Epoch-end metrics land on a step already sent.
    await writeMetrics(jobId, [['epoch_loss', 2, 5.4]]);
    expect(await stream.next()).toMatchObject({ event: 'metrics', data: { data: [{ name: 'epoch_loss', points: [[2, 5.4]] }] } });
    await addJobEvent(db, jobId, { type: 'epoch_completed', message: 'epoch 1 done', data: { epoch: 1, step: 1, loss: 5.4, lr: 0.03, images_per_s: 100, seconds: 1, knn_accuracy: null, probe_accuracy: null } });
    expect(await stream.next()).toMatchObject({ event: 'epoch_completed' });
    await writeMetrics(jobId, [['loss', 3, Number.NaN]]);
    expect(await stream.next()).toMatchObject({ event: 'metrics', data: { data: [{ name: 'loss', points: [[3, null]] }] } });
    await transitionJob(db, jobId, { from: ['running'], to: 'succeeded', event: { type: 'succeeded', message: 'done', data: { step: 1, checkpoint_id: null } } });
    const last = await stream.next();
    expect(last).toMatchObject({ event: 'succeeded' });
    expect(await stream.next()).toBeUndefined();

    // A reconnect resumes after Last-Event-ID; one after the end gets 204, which stops an EventSource.
    const resumed = await openStream(jobId, { headers: { 'last-event-id': created!.id! }, query: '?metrics_after_step=2' });
    expect(await resumed.next()).toMatchObject({ event: 'metrics', data: { data: [{ name: 'loss', points: [[3, null]] }] } });
    expect((await resumed.next())?.event).toBe('started');
    const finished = await fetch(`${t.current.url}/v1/jobs/${jobId}/events`, {
      headers: { ...bearer(key), accept: 'text/event-stream', 'last-event-id': last!.id! },
    });
    expect([finished.status, await finished.text()]).toEqual([204, '']);
    await resumed.cancel();
  });

  it('streams a queued job cancelled through the API to its end', async () => {
    const jobId = await newJob();
    const stream = await openStream(jobId);
    expect((await stream.next())?.event).toBe('created');
    await t.current.app.inject({ method: 'POST', url: `/v1/jobs/${jobId}/cancel`, headers: bearer(key) });
    expect(await stream.next()).toMatchObject({ event: 'cancelled', data: { data: { status: 'cancelled' } } });
    expect(await stream.next()).toBeUndefined();
  });

  it('ends open streams when the app closes, so shutdown is not held up', async () => {
    const { db, store, queue, config } = t.current;
    const app = await buildApp({ db, store, queue, config, logger: pino({ level: 'silent' }) });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const stream = await openStream(await newJob(), { url });
    expect((await stream.next())?.event).toBe('created');
    await app.close();
    expect(await stream.next()).toBeUndefined();
  });
});

describe('GET /v1/jobs/:id/metrics', () => {
  it('returns compact series by name and step range, capped per series', async () => {
    const jobId = await newJob();
    const rows: [string, number, number][] = [];
    for (let step = 1; step <= 10; step++) rows.push(['loss', step, 10 - step / 2], ['lr', step, 0.06]);
    rows.push(['knn_accuracy', 10, 0.42]);
    await writeMetrics(jobId, rows);

    const all = await get(`/v1/jobs/${jobId}/metrics`);
    expect(all.data.map((s: { name: string }) => s.name)).toEqual(['knn_accuracy', 'loss', 'lr']);
    expect(all).toMatchObject({ job_id: jobId, has_more: false, next_from_step: null });

    const some = await get(`/v1/jobs/${jobId}/metrics?name=loss,knn_accuracy&from_step=3&to_step=5`);
    expect(some.data).toEqual([{ name: 'loss', points: [[3, 8.5], [4, 8], [5, 7.5]] }]);

    const capped = await get(`/v1/jobs/${jobId}/metrics?name=loss,lr&limit=4`);
    expect(capped.data.map((s: { points: unknown[] }) => s.points.length)).toEqual([4, 4]);
    expect(capped).toMatchObject({ has_more: true, next_from_step: 5 });
    expect((await get(`/v1/jobs/${jobId}/metrics?from_step=-1`)).error.param).toBe('from_step');
  });
});

describe('GET /v1/jobs/:id/checkpoints', () => {
  it('lists checkpoints oldest first with their location', async () => {
    const jobId = await newJob();
    for (const step of [10, 20, 30]) {
      await t.current.db.checkpoint.create({
        data: {
          id: newId('ckpt'),
          jobId,
          projectId: key.project_id,
          step,
          epoch: step / 10,
          final: step === 30,
          objectKey: `projects/${key.project_id}/jobs/${jobId}/checkpoints/step-${String(step).padStart(9, '0')}.mocotens`,
          bytes: 1000 + step,
          metrics: { loss: 1 / step },
          transform: { size: 28, mean: [0.5], std: [0.25], channels: 1 },
          encoder: { arch: 'resnet18', stem: 'cifar', width: 64, in_channels: 1, head: 'v1', dim: 128 },
        },
      });
    }
    const first = await get(`/v1/jobs/${jobId}/checkpoints?limit=2`);
    expect(first.data.map((c: { step: number }) => c.step)).toEqual([10, 20]);
    const rest = await get(`/v1/jobs/${jobId}/checkpoints?limit=2&after=${first.next_cursor}`);
    expect(rest).toMatchObject({ has_more: false, next_cursor: null });
    expect(rest.data[0]).toEqual({
      id: expect.stringMatching(/^ckpt_/),
      job_id: jobId,
      step: 30,
      epoch: 3,
      final: true,
      bytes: 1030,
      downloads: {
        onnx: `/v1/checkpoints/${rest.data[0].id}/export?format=onnx&output=backbone`,
        onnx_head: `/v1/checkpoints/${rest.data[0].id}/export?format=onnx&output=head`,
        pytorch: `/v1/checkpoints/${rest.data[0].id}/export?format=pytorch`,
        mocotens: `/v1/checkpoints/${rest.data[0].id}/export?format=mocotens`,
      },
      metrics: { loss: 1 / 30 },
      transform: { size: 28, mean: [0.5], std: [0.25], channels: 1 },
      encoder: { arch: 'resnet18', stem: 'cifar', width: 64, in_channels: 1, head: 'v1', dim: 128 },
      created_at: expect.any(String),
    });
  });
});
