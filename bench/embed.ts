// `npm run -s bench:embed`: the gRPC embedder's throughput and latency against the raw forward pass.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { embedderEnv, loadConfig } from '@moco/config';
import { createDb, createTestDatabase } from '@moco/db';
import { createEmbeddingClient, promoteModel, type EmbedRequest } from '@moco/models';
import { cifarDemoDefaults, evalTransform, initBackend, Rng, tf, type MocoConfig } from '@moco/moco';
import { createObjectStore } from '@moco/storage';
import sharp from 'sharp';
import { z } from 'zod';
import { createCheckpoint, createProjectWithKey } from '../apps/embedder/src/testing.js';
import { timeSteps } from './harness.js';

const usage = `Usage: npm run -s bench:embed -- [options]

Starts the embedder (apps/embedder, a child process) on a checkpoint of ResNet-18 (CIFAR stem) with
32x32x3 inputs, calls Embed over its socket from C concurrent callers (each request: PNG images,
backbone output, L2-normalised) and reports images/s and latency per concurrency; then times
Encoder.embed of the same model on the same backend in this process at the server's maximum batch
(the raw forward pass) right before and right after the served levels, and overhead = 1 - served/raw
at the highest concurrency, raw being the mean of the two (both are reported: a big difference means
the machine's load changed during the run and the overhead is not trustworthy). Prints one JSON object; needs the local Postgres (a throwaway database is created and dropped).

  --concurrency 1,8,32   concurrent callers, one level after another (default 1,8,32)
  --seconds S            timed seconds per level, after 2 s of warm-up (default 8)
  --images N             images per request (default 2)
  --width N              ResNet width (default 16)
  --max-batch N          EMBED_MAX_BATCH, also the raw pass's batch (default 64)
  --max-delay-ms N       EMBED_MAX_DELAY_MS (default 5)
  --backend auto|native|wasm|cpu|tensorflow   tfjs backend of both sides (default auto)
  --threads N            EMBED_THREADS, also the raw pass's (native backend; default: cores - 1, as the embedder)
  --profile-dir DIR      write V8 CPU profiles of the embedder's threads there (to see where serving time goes)
`;

const SIZE = 32;
const round = (x: number, digits = 1) => Number(x.toFixed(digits));
const log = (line: string) => process.stderr.write(`${line}\n`);

const { values: o } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1,8,32' },
    seconds: { type: 'string', default: '8' },
    images: { type: 'string', default: '2' },
    width: { type: 'string', default: '16' },
    'max-batch': { type: 'string', default: '64' },
    'max-delay-ms': { type: 'string', default: '5' },
    backend: { type: 'string', default: 'auto' },
    'profile-dir': { type: 'string' },
    threads: { type: 'string', default: String(loadConfig(z.object({ EMBED_THREADS: embedderEnv.EMBED_THREADS }), {}).EMBED_THREADS) },
    help: { type: 'boolean', default: false },
  },
});
if (o.help) {
  process.stdout.write(usage);
  process.exit(0);
}
const levels = o.concurrency.split(',').map(Number);
const [seconds, imagesPerRequest, width, maxBatch, maxDelayMs, threads] = [o.seconds, o.images, o.width, o['max-batch'], o['max-delay-ms'], o.threads].map(
  Number,
) as [number, number, number, number, number, number];
if ([...levels, imagesPerRequest, width, maxBatch, threads].some((x) => !Number.isInteger(x) || x < 1) || !(seconds > 0) || !(maxDelayMs >= 0)) {
  process.stderr.write(`invalid options\n\n${usage}`);
  process.exit(1);
}

const started = performance.now();
const loadStart = os.loadavg();
// The raw pass computes with as many threads as the embedder's forward pass.
process.env.MOCO_NATIVE_THREADS = String(threads);
const backend = await initBackend({ prefer: o.backend as 'auto', log });
const config: MocoConfig = { ...cifarDemoDefaults, width, K: 64, bnSplits: 1, batchSize: 64 };
const transform = { size: SIZE, channels: 3 as const, mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] };

const tdb = await createTestDatabase();
const storeRoot = await mkdtemp(path.join(os.tmpdir(), 'bench-embed-'));
const db = createDb(tdb.url);
const store = createObjectStore({ kind: 'local', root: storeRoot });
const { projectId, apiKey } = await createProjectWithKey(db);
const checkpoint = await createCheckpoint(db, store, { projectId, config, transform, seed: 0 });
await promoteModel(db, { projectId, alias: 'production', checkpointId: checkpoint.id });

const rng = new Rng(1);
const pixels = new Uint8Array(maxBatch * SIZE * SIZE * 3).map(() => rng.int(256));
const pngs = await Promise.all(
  Array.from({ length: imagesPerRequest }, (_, i) =>
    sharp(pixels.subarray(i * SIZE * SIZE * 3, (i + 1) * SIZE * SIZE * 3), { raw: { width: SIZE, height: SIZE, channels: 3 } })
      .png()
      .toBuffer(),
  ),
);
const request: EmbedRequest = { images: pngs, normalize: true };

const profile = o['profile-dir'] ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(o['profile-dir'])}`] : [];
const server = spawn(process.execPath, [...process.execArgv, ...profile, fileURLToPath(new URL('../apps/embedder/src/main.ts', import.meta.url))], {
  env: {
    ...process.env,
    DATABASE_URL: tdb.url,
    STORAGE_KIND: 'local',
    STORAGE_ROOT: storeRoot,
    EMBED_PORT: '0',
    EMBED_BACKEND: backend.name,
    EMBED_MAX_BATCH: String(maxBatch),
    EMBED_MAX_DELAY_MS: String(maxDelayMs),
    EMBED_THREADS: String(threads),
    LOG_LEVEL: 'info',
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const exited = new Promise<number | null>((resolve) => server.on('exit', resolve));

try {
  const address = await new Promise<string>((resolve, reject) => {
    server.on('exit', (code) => reject(new Error(`the embedder exited with ${code} before listening`)));
    createInterface({ input: server.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { msg: string; level: number; address?: string };
      if (entry.msg === 'embedder listening') resolve(entry.address!);
      else if (entry.level >= 40) log(`embedder: ${line}`);
    });
  });
  const client = createEmbeddingClient(address, { apiKey });
  // The model loads on the first call: not part of any warm-up or timing.
  await client.embed(request);
  // As the embedder's forward-pass thread holds it.
  checkpoint.moco.query.freeze();
  const x = tf.tidy(() => evalTransform(tf.tensor4d(pixels, [maxBatch, SIZE, SIZE, 3], 'float32'), transform));
  const timeRaw = async (when: string) => {
    log(`raw forward pass, batch ${maxBatch} (${when})`);
    return timeSteps(maxBatch, { warmup: 2, minSteps: 5, maxSteps: 30, budgetS: 5 }, () =>
      checkpoint.moco.query.embed(x, { normalize: true, batchSize: maxBatch }),
    );
  };
  const rawBefore = await timeRaw('before the served levels');
  const results = [];
  for (const concurrency of levels) {
    log(`concurrency ${concurrency}: 2 s warm-up, ${seconds} s timed`);
    await load(client, concurrency, 2);
    const cpu = cpuMeter(server.pid!);
    const measured = await load(client, concurrency, seconds);
    results.push({ concurrency, ...measured, cores_busy: cpu() });
    log(`  ${JSON.stringify(results.at(-1))}`);
  }
  client.close();

  const rawAfter = await timeRaw('after the served levels');
  const rawImagesPerS = round((rawBefore.images_per_s + rawAfter.images_per_s) / 2);
  const top = results.at(-1)!;
  const overhead = round(1 - top.images_per_s / rawImagesPerS, 3);
  const report = {
    bench: 'embed',
    model: { arch: config.arch, stem: config.stem, width, image_size: SIZE, channels: 3, output: 'backbone', normalize: true },
    server: { max_batch: maxBatch, max_delay_ms: maxDelayMs, threads, backend: backend.name, backend_detail: backend.detail },
    images_per_request: imagesPerRequest,
    image_format: 'png',
    results,
    raw: {
      images_per_s: rawImagesPerS,
      is: 'mean of before and after',
      batch: maxBatch,
      before: { images_per_s: rawBefore.images_per_s, step_ms_median: rawBefore.step_ms_median, steps_timed: rawBefore.steps_timed },
      after: { images_per_s: rawAfter.images_per_s, step_ms_median: rawAfter.step_ms_median, steps_timed: rawAfter.steps_timed },
      change: round(rawAfter.images_per_s / rawBefore.images_per_s - 1, 3),
    },
    overhead: { concurrency: top.concurrency, value: overhead, is: '1 - served images_per_s / raw images_per_s', goal: 0.1, met: overhead <= 0.1 },
    machine: {
      cpus: os.cpus().length,
      cpu_model: os.cpus()[0]?.model ?? 'unknown',
      node: process.version,
      tfjs: tf.version_core,
      load_avg_start: loadStart.map((v) => round(v, 2)),
      load_avg_end: os.loadavg().map((v) => round(v, 2)),
    },
    elapsed_s: round((performance.now() - started) / 1000),
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  x.dispose();
} finally {
  server.kill('SIGTERM');
  await exited;
  checkpoint.moco.dispose();
  await db.$disconnect();
  await tdb.drop();
  await rm(storeRoot, { recursive: true, force: true });
}

/**
 * CPU used from now until the returned function is called, in cores (1 = one core busy throughout): the
 * embedder process (all its threads, from /proc; null where there is none) and this load generator.
 */
function cpuMeter(pid: number): () => { embedder: number | null; load_generator: number } {
  // utime + stime, in clock ticks (USER_HZ, 100 on Linux).
  const embedderTicks = () => {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return Number(fields[11]) + Number(fields[12]);
    } catch {
      return null;
    }
  };
  const t0 = performance.now();
  const own0 = process.cpuUsage();
  const ticks0 = embedderTicks();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const own = process.cpuUsage(own0);
    const ticks = embedderTicks();
    return {
      embedder: ticks === null || ticks0 === null ? null : round((ticks - ticks0) / 100 / seconds, 2),
      load_generator: round((own.user + own.system) / 1e6 / seconds, 2),
    };
  };
}

/** `concurrency` callers, each calling Embed back to back for `seconds`. */
async function load(client: ReturnType<typeof createEmbeddingClient>, concurrency: number, seconds: number) {
  const latencies: number[] = [];
  let errors = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          await client.embed(request);
          latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const sorted = latencies.sort((a, b) => a - b);
  const q = (p: number) => round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN);
  return {
    requests: latencies.length,
    errors,
    images_per_s: round((latencies.length * imagesPerRequest) / elapsed),
    latency_ms: { p50: q(0.5), p99: q(0.99) },
  };
}
