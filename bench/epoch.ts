// `npm run bench:epoch`: the whole training path (dataset read, augmentation, batching, the step),
// TypeScript (`train` of @moco/trainer, as the worker's trainer child runs it) against a PyTorch
// script with torchvision transforms and a DataLoader, per dataset. `--help` says more.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FASHION_MNIST_DIR, meanStd, readDataset } from '@moco/data';
import { cifarDemoDefaults, initBackend, tf, type AugmentationName, type BackendName, type MocoConfig } from '@moco/moco';
import { train, type StepInfo } from '@moco/trainer';
import { findTorchPython } from '../libs/moco/src/testing/torch-reference.js';
import { writeColourImages } from './colour-images.js';
import { log, machineReport, round, runJson, type Side } from './harness.js';

const usage = `Usage: npm run bench:epoch -- [options]

Runs the training path end to end for a fixed number of steps of the published recipe (ResNet-18,
CIFAR stem, width 16, batch 256, K 4096), per dataset, in a process per side:
- TypeScript: readDataset (as the worker reads a job's dataset), then train() of @moco/trainer (the
  trainer child's loop: batches, two augmented views per batch, Moco.step) for one epoch of exactly
  warmup + steps batches.
- PyTorch (bench/torch_epoch.py): the same images read as torchvision's datasets do, a Dataset
  giving two views per image through torchvision transforms (PIL), a DataLoader (shuffle,
  drop_last, --torch-workers worker processes), moco_model.train_step.
Datasets: fashion-mnist (Debian's idx files, 28x28 grey, 'gray' augmentation) and colour32 (32x32
colour PNGs in ImageFolder layout, generated from a seed by bench/colour-images.ts, MoCo v2
augmentation). Prints one JSON object on stdout (progress on stderr).

  --datasets fashion-mnist,colour32   which datasets (default both)
  --steps N          timed steps per side (default 8)
  --warmup N         untimed steps first (default 1)
  --batch N (256)  --width N (16)  --K N (4096)
  --backend auto|native|wasm|cpu|tensorflow   tfjs backend (default auto)
  --threads N        PyTorch threads (default 2)
  --torch-workers N  DataLoader worker processes (default 2)
  --quick            2 timed steps
`;

const DATASETS = ['fashion-mnist', 'colour32'] as const;
type DatasetName = (typeof DATASETS)[number];

/** One side's run, as handed to the child processes as JSON. */
interface EpochJob {
  dataset: DatasetName;
  /** What readDataset reads (a file or folder); the PyTorch side reads the same files. */
  path: string;
  augmentation: AugmentationName;
  /** warmup + steps batches of images: one epoch. */
  images: number;
  config: MocoConfig;
  warmup: number;
  steps: number;
  backend: BackendName | 'auto';
  threads: number;
  workers: number;
}

const COLOUR_SEED = 0;

/** The TypeScript side: read as the worker does, then train one epoch of warmup + steps batches. */
async function child(job: EpochJob): Promise<void> {
  const backend = await initBackend({ prefer: job.backend });
  const readStart = performance.now();
  const ds = await readDataset(job.path, { limit: job.images, channels: job.config.inChannels });
  const readS = (performance.now() - readStart) / 1000;
  const steps: StepInfo[] = [];
  const run = await train({
    train: ds,
    config: job.config,
    settings: { seed: 0, augmentation: job.augmentation, transform: { size: ds.height, ...meanStd(ds) } },
    onStep: (s) => {
      steps.push(s);
      log(`  step ${s.step}: ${round(s.seconds * 1000)} ms (data ${round(s.dataSeconds * 1000)} ms)`);
    },
  });
  run.moco.dispose();
  const timed = steps.slice(job.warmup);
  const sum = (f: (s: StepInfo) => number) => timed.reduce((a, s) => a + f(s), 0);
  const seconds = sum((s) => s.seconds);
  process.stdout.write(
    JSON.stringify({
      images_per_s: round(sum((s) => s.images) / seconds),
      steps_timed: timed.length,
      data_ms_mean: round((1000 * sum((s) => s.dataSeconds)) / timed.length),
      step_ms_mean: round((1000 * sum((s) => s.seconds - s.dataSeconds)) / timed.length),
      data_share: round(sum((s) => s.dataSeconds) / seconds, 3),
      warmup_ms: steps.slice(0, job.warmup).map((s) => round(s.seconds * 1000)),
      read_s: round(readS, 2),
      backend: backend.name,
      backend_detail: backend.detail,
      tfjs: tf.version_core,
      peak_rss_mb: round(process.resourceUsage().maxRSS / 1024),
    }) + '\n',
  );
}

function summary(side: Side): string {
  if (side.error) return `  failed: ${side.error}`;
  return `  ${side.images_per_s} images/s: data ${side.data_ms_mean} ms + step ${side.step_ms_mean} ms per batch, read ${side.read_s} s`;
}

async function parent(argv: string[]): Promise<void> {
  const { values: o } = parseArgs({
    args: argv,
    options: {
      datasets: { type: 'string', default: DATASETS.join(',') },
      steps: { type: 'string' },
      warmup: { type: 'string', default: '1' },
      batch: { type: 'string', default: '256' },
      width: { type: 'string', default: '16' },
      K: { type: 'string', default: '4096' },
      backend: { type: 'string', default: 'auto' },
      threads: { type: 'string', default: '2' },
      'torch-workers': { type: 'string', default: '2' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (o.help) {
    process.stdout.write(usage);
    return;
  }
  const int = (s: string) => Number(s);
  const [steps, warmup, batch, width, K, threads, workers] = [o.steps ?? (o.quick ? '2' : '8'), o.warmup, o.batch, o.width, o.K, o.threads, o['torch-workers']].map(int) as number[];
  if ([steps, warmup, batch, width, K, threads, workers].some((x) => !Number.isInteger(x) || x! < 0) || steps! < 1 || batch! < 2) {
    throw new Error('invalid options: steps, warmup, batch, width, K, threads and torch-workers are whole numbers, steps >= 1, batch >= 2 (see --help)');
  }
  const datasets = o.datasets.split(',') as DatasetName[];
  const unknown = datasets.filter((d) => !DATASETS.includes(d));
  if (unknown.length > 0) throw new Error(`unknown dataset ${unknown.join(', ')}: use ${DATASETS.join(', ')}`);
  const { python, reason } = findTorchPython();
  if (!python) throw new Error(reason);

  const started = performance.now();
  const loadStart = os.loadavg();
  const images = (warmup! + steps!) * batch!;
  const scratch = await mkdtemp(join(os.tmpdir(), 'moco-bench-epoch-'));
  const results = [];
  let [tfjsVersion, torchVersion] = ['', ''];
  try {
    for (const dataset of datasets) {
      const colour = dataset === 'colour32';
      if (colour) {
        log(`colour32: writing ${images} PNGs (seed ${COLOUR_SEED})`);
        await writeColourImages(join(scratch, 'colour32'), images, COLOUR_SEED);
      }
      const job: EpochJob = {
        dataset,
        path: colour ? join(scratch, 'colour32') : join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'),
        augmentation: colour ? 'v2' : 'gray',
        images,
        config: { ...cifarDemoDefaults, width: width!, inChannels: colour ? 3 : 1, batchSize: batch!, K: K!, epochs: 1 },
        warmup: warmup!,
        steps: steps!,
        backend: o.backend as EpochJob['backend'],
        threads: threads!,
        workers: workers!,
      };
      const arg = JSON.stringify(job);
      log(`epoch ${dataset}: TypeScript (backend ${job.backend})`);
      const { tfjs, ...ts } = await runJson('TypeScript side', process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', arg]);
      log(summary(ts));
      log(`epoch ${dataset}: PyTorch (${threads} threads, ${workers} DataLoader workers)`);
      const { version, ...torch } = await runJson('PyTorch side', python, [fileURLToPath(new URL('torch_epoch.py', import.meta.url)), arg]);
      log(summary(torch));
      tfjsVersion ||= (tfjs as string | undefined) ?? '';
      torchVersion ||= (version as string | undefined) ?? '';
      const ratio = ts.images_per_s && torch.images_per_s ? round(ts.images_per_s / torch.images_per_s, 3) : null;
      results.push({ dataset, augmentation: job.augmentation, image_size: colour ? 32 : 28, ts, torch, ratio });
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const c = cifarDemoDefaults;
  const report = {
    bench: 'epoch',
    recipe: { arch: c.arch, stem: c.stem, head: c.head, width, batch, K, dim: c.dim, bn_splits: c.bnSplits, lr: c.lr, steps, warmup },
    ratio_is: 'ts.images_per_s / torch.images_per_s over the timed steps, data included (1 = as fast as PyTorch)',
    results,
    machine: machineReport(loadStart, tfjsVersion, torchVersion),
    elapsed_s: round((performance.now() - started) / 1000),
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

try {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') await child(JSON.parse(argv[1]!) as EpochJob);
  else await parent(argv);
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
