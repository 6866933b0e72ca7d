// `npm run demo`: the whole service on this machine, end to end. Migrates Postgres, starts the API and
// a worker, uploads a Fashion-MNIST subset, trains a short MoCo job while printing its progress, and
// ends with one JSON line: job id, status, final kNN accuracy beside the raw-pixel and random-init
// baselines (where the worker measured them), and checkpoint location.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { createKeyRepository, createKeyService } from '@moco/api';
import { databaseEnv, loadConfig } from '@moco/config';
import { FASHION_MNIST_DIR, idxArchive, type ImageDataset } from '@moco/data';
import { createDatabaseIfMissing, createDb, migrate } from '@moco/db';
import { MocoClient } from '@moco/sdk';
import { pino } from 'pino';
import { z } from 'zod';
import { loadDemoData } from './demo-data.js';

const usage = `Usage: npm run demo -- [--train-images N (4096)] [--test-images N (2000)] [--epochs N (3)] [--width N (8)]

Needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL; defaults postgresql://root@127.0.0.1:5432/moco and
redis://127.0.0.1:6379). Images: Fashion-MNIST's full set where its idx files are in FASHION_MNIST_DIR
(default ${FASHION_MNIST_DIR}, Debian's dataset-fashion-mnist), else the subset shipped with the repository
(5000 training and 2000 test images, libs/data/fashion-mnist-subset). Hyperparameters not set here come
from the service's recipe for the dataset's size. Objects go to ./.data/objects, logs to ./.data/demo-logs.
`;

const Options = z.object({
  'train-images': z.coerce.number().int().min(64).max(60000).default(4096),
  'test-images': z.coerce.number().int().min(10).max(10000).default(2000),
  epochs: z.coerce.number().int().min(1).max(200).default(3),
  width: z.coerce.number().int().min(1).max(64).default(8),
});
const { values } = parseArgs({
  options: {
    'train-images': { type: 'string' },
    'test-images': { type: 'string' },
    epochs: { type: 'string' },
    width: { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  process.stdout.write(usage);
  process.exit(0);
}
const opts = Options.parse(values);
const { DATABASE_URL } = loadConfig(z.object(databaseEnv));
const log = (line: string) => process.stderr.write(`${line}\n`);

const children: ChildProcess[] = [];
async function stopChildren(): Promise<void> {
  await Promise.all(
    children.map((c) => (c.exitCode !== null ? undefined : new Promise<void>((done) => c.once('exit', () => done()).kill('SIGTERM')))),
  );
}
process.on('SIGINT', () => void stopChildren().then(() => process.exit(130)));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

async function start(name: string, entry: string, env: NodeJS.ProcessEnv, logDir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = createWriteStream(join(logDir, `${name}.log`));
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM') log(`${name} exited (${code ?? signal}); see ${join(logDir, `${name}.log`)}`);
  });
  children.push(child);
  return child;
}

try {
  const data = await loadDemoData({ train: opts['train-images'], test: opts['test-images'] });
  log(data.source.description);

  log(`database: migrating ${DATABASE_URL.replace(/:[^:@/]*@/, ':***@')}`);
  await createDatabaseIfMissing(DATABASE_URL);
  await migrate(DATABASE_URL);
  const db = createDb(DATABASE_URL, { maxConnections: 1 });
  const key = await createKeyService(createKeyRepository(db), pino({ level: 'warn' })).createKey({
    projectName: 'demo',
    role: 'member',
    name: `demo-${new Date().toISOString()}`,
  });
  await db.$disconnect();

  const logDir = resolve('.data/demo-logs');
  await mkdir(logDir, { recursive: true });
  const port = await freePort();
  const env = {
    ...process.env,
    DATABASE_URL,
    STORAGE_KIND: process.env.STORAGE_KIND ?? 'local',
    STORAGE_ROOT: process.env.STORAGE_ROOT ?? resolve('.data/objects'),
    API_HOST: '127.0.0.1',
    API_PORT: String(port),
  };
  await start('api', 'apps/api/src/main.ts', env, logDir);
  await start('worker', 'apps/worker/src/main.ts', env, logDir);
  const baseUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ready = await fetch(`${baseUrl}/readyz`).then((r) => r.ok, () => false);
    if (ready) break;
    if (i > 120) throw new Error(`the API did not become ready; see ${logDir}/api.log`);
    await sleep(500);
  }
  log(`api: ${baseUrl} (logs in ${logDir})`);

  const client = new MocoClient({ baseUrl, apiKey: key.key });
  const upload = async (split: 'train' | 'test', images: ImageDataset) => {
    const archive = await idxArchive(images, split === 'train' ? 'train' : 't10k');
    const name = `fashion-mnist${data.source.subset ? '-subset' : ''}-${split}-${images.count}`;
    const ds = await client.datasets.upload(archive, { name, filename: `fashion-mnist-${split}.tar` });
    log(`dataset ${ds.id}: ${ds.image_count} images ${ds.height}x${ds.width}x${ds.channels}, ${ds.labelled ? `${ds.class_counts?.length ?? ds.class_names?.length ?? 0} classes` : 'unlabelled'}`);
    return ds;
  };
  const train = await upload('train', data.train);
  const test = await upload('test', data.test);

  const created = await client.jobs.create({
    dataset_id: train.id,
    eval_dataset_id: test.id,
    hyperparameters: { width: opts.width, epochs: opts.epochs },
    seed: 0,
    checkpoint_every: 100,
    metadata: { source: 'demo' },
  });
  const hp = created.hyperparameters;
  log(
    `job ${created.id}: ${created.progress.total_steps} steps; the recipe for ${train.image_count} images: ` +
      `batch ${hp.batch_size}, lr ${hp.lr}, K ${hp.K}, bn_splits ${hp.bn_splits}, ${hp.symmetric ? 'symmetric' : 'asymmetric'} loss`,
  );
  for (const w of created.warnings) log(`  warning: ${w.field} ${w.message}`);

  let lastPrinted = 0;
  const job = await client.jobs.wait(created.id, {
    onItem: (item) => {
      if (item.kind === 'event') {
        const { type, message } = item.event;
        if (type !== 'checkpoint_saved') log(`  ${type}: ${message}`);
        return;
      }
      const loss = item.series.find((s) => s.name === 'loss')?.points.at(-1);
      if (loss && Date.now() - lastPrinted > 2000) {
        lastPrinted = Date.now();
        log(`  step ${loss[0]}/${created.progress.total_steps}  loss ${loss[1]?.toFixed(4)}`);
      }
    },
  });
  const checkpoints = [];
  for await (const c of client.jobs.checkpoints(job.id)) checkpoints.push(c);
  const final = checkpoints.find((c) => c.final) ?? checkpoints.at(-1);
  // The baselines are written by workers that measure them; older ones leave them out.
  const metric = (name: string) => job.latest_metrics[name] ?? null;
  const knn = {
    knn_accuracy: metric('knn_accuracy'),
    baseline_raw_knn_accuracy: metric('baseline_raw_knn_accuracy'),
    baseline_random_knn_accuracy: metric('baseline_random_knn_accuracy'),
  };
  const pct = (v: number | null) => (v === null ? 'not measured' : `${(100 * v).toFixed(2)}%`);
  log(
    `kNN accuracy on ${test.image_count} test images: encoder ${pct(knn.knn_accuracy)}, raw pixels ` +
      `${pct(knn.baseline_raw_knn_accuracy)}, randomly initialised encoder ${pct(knn.baseline_random_knn_accuracy)}` +
      (knn.knn_accuracy !== null && knn.baseline_raw_knn_accuracy !== null && knn.knn_accuracy < knn.baseline_raw_knn_accuracy
        ? ' (a short run shows the service working, not features that beat pixels; see the README for the budget that does)'
        : ''),
  );
  process.stdout.write(
    `${JSON.stringify({
      job_id: job.id,
      status: job.status,
      ...knn,
      checkpoint: final?.id ?? null,
      download: final?.downloads.pytorch ?? null,
    })}\n`,
  );
  await stopChildren();
  process.exit(job.status === 'succeeded' ? 0 : 1);
} catch (err) {
  log(`demo failed: ${(err as Error).message}`);
  await stopChildren();
  process.exit(1);
}
