import { randomFillSync } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { idxArchive, idxFile } from '@moco/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiProcess, type ApiProcess } from '../support/api-process.js';
import { postDataset } from '../support/dataset-files.js';
import { startLocalStack, type LocalStack } from '../support/local-stack.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';

// SIGKILL of the API or the worker at random (seeded) points of an upload, a training run, a
// checkpoint write and a promotion, then a restart: no job is lost, and once the start-up sweeps
// have run no row lacks its object and no object or spool file lacks its row. Real processes,
// Postgres, Redis and a local object store (so a partial put is a file the test sees).
// CRASH_SEED replays a run; CRASH_ROUNDS (default 1) multiplies the crash points for a longer soak.

const SEED = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 1);
const SIDE = 16;
const IMAGES = 256;
const SMALL = { width: 4, dim: 16, K: 256, batch_size: 32, bn_splits: 4, image_size: SIDE, knn_k: 20, epochs: 3 };

/** mulberry32: a few lines, and the same crash points for the same seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

let stack: LocalStack;
let api: ApiProcess;
let worker: WorkerProcess | null = null;
let key: string;
/** Crash points tried, and where each one actually hit. */
const tried: string[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000, everyMs = 5): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (seed ${SEED})`);
    await sleep(everyMs);
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

const isPartial = (file: string) => path.basename(file).startsWith('.moco-partial-');

/** Every broken promise of the write order, as a readable list (empty when all is well). */
async function leftovers(): Promise<string[]> {
  const { db } = stack;
  const files = await filesUnder(stack.objectsDir);
  const objects = new Set(files.filter((f) => !isPartial(f)));
  const datasets = await db.dataset.findMany();
  const checkpoints = await db.checkpoint.findMany();
  const named = new Set([...datasets.map((d) => d.objectKey), ...checkpoints.map((c) => c.objectKey)]);
  return [
    ...files.filter(isPartial).map((f) => `partial object ${f}`),
    ...(await filesUnder(stack.spoolDir)).map((f) => `spool file ${f}`),
    ...(await filesUnder(stack.cacheDir)).filter((f) => /^(partial|pins)\//.test(f)).map((f) => `partial download or dead pin ${f}`),
    ...datasets.filter((d) => d.status !== 'ready').map((d) => `dataset ${d.id} is ${d.status}`),
    ...datasets.filter((d) => d.objectKey && !objects.has(d.objectKey)).map((d) => `dataset ${d.id} without its object`),
    ...checkpoints.filter((c) => !objects.has(c.objectKey)).map((c) => `checkpoint ${c.id} without its object`),
    ...[...objects].filter((o) => !named.has(o)).map((o) => `object ${o} without its row`),
  ];
}

/** The sweeps run at start-up and then every SWEEP_GRACE_S: wait for them, then say what is left. */
async function expectNoLeftovers(): Promise<void> {
  const end = Date.now() + 20_000;
  let left = await leftovers();
  while (left.length > 0 && Date.now() < end) {
    await sleep(200);
    left = await leftovers();
  }
  expect(left, `leftovers after crash points ${tried.join(', ')} (seed ${SEED})`).toEqual([]);
}

async function restartApi(): Promise<void> {
  api = await startApiProcess(stack.env);
}

async function killApi(): Promise<void> {
  await api.stop('SIGKILL');
}

function startWorker(): WorkerProcess {
  worker = startWorkerProcess({ ...stack.env, WORKER_LOCK_DURATION_MS: '3000', WORKER_STALLED_INTERVAL_MS: '1000', RECONCILE_INTERVAL_S: '2' });
  return worker;
}

/** A body streamed in 1 MiB chunks with pauses, so that spooling is a phase a crash can land in. */
function slowBody(data: Uint8Array): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    async pull(controller) {
      if (offset >= data.length) return controller.close();
      await sleep(10);
      controller.enqueue(data.subarray(offset, offset + 1024 ** 2));
      offset += 1024 ** 2;
    },
  });
}

const UPLOAD_POINTS = ['spooling', 'validating', 'pending row', 'partial object'] as const;

/** Where an upload is: the first phase whose sign is there (null: none yet). */
async function uploadPhase(bodyBytes: number): Promise<(typeof UPLOAD_POINTS)[number] | 'ready' | null> {
  if ((await filesUnder(stack.objectsDir)).some(isPartial)) return 'partial object';
  const rows = await stack.db.dataset.findMany({ select: { status: true }, where: { name: 'crash' } });
  if (rows.some((r) => r.status === 'pending')) return 'pending row';
  if (rows.some((r) => r.status === 'ready')) return 'ready';
  const spools = await filesUnder(stack.spoolDir);
  if (spools.length === 0) return null;
  const bytes = (await stat(path.join(stack.spoolDir, spools[0]!)).catch(() => null))?.size ?? 0;
  return bytes >= bodyBytes ? 'validating' : 'spooling';
}

beforeAll(async () => {
  stack = await startLocalStack({ SWEEP_GRACE_S: '1' });
  await restartApi();
  key = (await stack.createKey('crash')).key;
});

afterAll(async () => {
  await worker?.stop('SIGKILL');
  await api?.stop('SIGKILL');
  await stack?.close();
  console.log(`crash points (seed ${SEED}): ${tried.join(', ')}`);
});

describe(`crash points (seed ${SEED})`, () => {
  it('an API killed anywhere in an upload leaves nothing once restarted', async () => {
    const count = 12_000;
    const body = idxFile([count, 28, 28], randomFillSync(new Uint8Array(count * 28 * 28)));
    for (let round = 0; round < 3 * ROUNDS; round++) {
      const target = pick(UPLOAD_POINTS);
      const sent = fetch(`${api.url}/v1/datasets?name=crash`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream' },
        body: slowBody(body),
        duplex: 'half',
      } as RequestInit).catch(() => null);
      // Kill at the target phase, or at the first later one should the target pass unseen.
      const order = [...UPLOAD_POINTS, 'ready'];
      const hit = await waitFor(`upload phase ${target}`, async () => {
        const phase = await uploadPhase(body.length);
        return phase !== null && order.indexOf(phase) >= order.indexOf(target) ? phase : null;
      });
      await killApi();
      await sent;
      tried.push(`upload/${target}${hit === target ? '' : `->${hit}`}`);
      await restartApi();
      await expectNoLeftovers();
    }
  });

  it('a worker killed while training or writing a checkpoint loses no job and leaves nothing', async () => {
    const pixels = randomFillSync(new Uint8Array(IMAGES * SIDE * SIDE));
    const labels = Int32Array.from({ length: IMAGES }, (_, i) => i % 4);
    const archive = await idxArchive({ count: IMAGES, height: SIDE, width: SIDE, channels: 1, pixels, labels });
    const dataset = await postDataset(api.url, key, archive);
    expect(dataset.status).toBe(201);
    const created = await fetch(`${api.url}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ dataset_id: dataset.json.id, hyperparameters: SMALL, seed: SEED % 1000, checkpoint_every: 2 }),
    });
    expect(created.status).toBe(201);
    const job = (await created.json()) as { id: string; progress: { total_steps: number } };
    const total = job.progress.total_steps;
    const jobRow = () => stack.db.job.findUniqueOrThrow({ where: { id: job.id } });

    startWorker();
    for (let round = 0; round < 2 * ROUNDS; round++) {
      const target = pick(['step', 'checkpoint object'] as const);
      const fromStep = (await jobRow()).step;
      if (target === 'step') {
        const step = Math.min(total - 1, fromStep + 1 + Math.floor(random() * 6));
        await waitFor(`step ${step}`, async () => (await jobRow()).step >= step || (await jobRow()).status === 'succeeded', 120_000, 10);
        tried.push(`worker/step ${step}`);
      } else {
        // A checkpoint object the worker has not recorded yet: written, its row still to come.
        const hit = await waitFor(
          'a checkpoint object',
          async () => {
            const objects = (await filesUnder(stack.objectsDir)).filter((f) => f.includes('/checkpoints/') && !isPartial(f));
            const rows = await stack.db.checkpoint.count({ where: { jobId: job.id } });
            if (objects.length > rows) return 'unrecorded';
            return (await jobRow()).status === 'succeeded' ? 'finished' : rows > 0 && (await jobRow()).step > fromStep + 4 ? 'recorded' : null;
          },
          120_000,
          2,
        );
        tried.push(`worker/checkpoint ${hit}`);
      }
      await worker!.stop('SIGKILL');
      startWorker();
    }
    const done = await waitFor('the job to succeed', async () => {
      const row = await jobRow();
      if (row.status === 'failed' || row.status === 'cancelled') throw new Error(`job ${row.status}: ${row.errorMessage} (seed ${SEED})`);
      return row.status === 'succeeded' ? row : null;
    }, 180_000, 100);
    expect(done.step).toBe(total);

    // A promotion killed at a random moment is all or nothing.
    const checkpoint = await stack.db.checkpoint.findFirstOrThrow({ where: { jobId: job.id }, orderBy: { step: 'desc' } });
    const promoted = fetch(`${api.url}/v1/models`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ checkpoint_id: checkpoint.id, alias: 'production' }),
    }).catch(() => null);
    await sleep(random() * 30);
    await killApi();
    const answer = await promoted;
    tried.push(`promotion/${answer ? `answered ${answer.status}` : 'killed'}`);
    await restartApi();
    const alias = await stack.db.modelAlias.findFirst({ where: { alias: 'production' } });
    if (answer?.status === 201) expect(alias?.checkpointId).toBe(checkpoint.id);
    if (alias) expect(alias.checkpointId).toBe(checkpoint.id);

    // The worker's start-up sweep sees the job finished: its unrecorded checkpoints go.
    await worker!.stop('SIGKILL');
    startWorker();
    await waitFor('the worker to start', async () => worker!.logs.some((l) => l.includes('worker started')), 60_000, 50);
    await expectNoLeftovers();
  });
});
