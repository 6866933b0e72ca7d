// Local MoCo training without the service: `npm run train:local -- --help`.
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { backend } from '@moco/config';
import { loadFashionMnist, meanStd, readDataset, type ImageDataset } from '@moco/data';
import { cifarDemoDefaults, initBackend, saveTrainingState, type MocoConfig } from '@moco/moco';
import { exportOnnx, exportPytorch, type Preprocessing } from '@moco/moco/export';
import { knnAccuracy, rawPixelKnnAccuracy, train, type RunSettings } from '@moco/trainer';
import { z } from 'zod';

const usage = `Usage: npm run train:local -- [options]

Trains MoCo locally and prints, per epoch, the loss, images/s and kNN accuracy on the test set,
after the kNN accuracy of the randomly initialised encoder and of raw pixels.

  --dataset fashion-mnist|PATH   training images (default fashion-mnist, from Debian's dataset-fashion-mnist)
  --eval-dataset PATH            labelled test images for the kNN monitor (fashion-mnist: its test split)
  --train-limit N --test-limit N use the first N images (default 4096 / 10000)
  --epochs N (6)  --batch-size N (64)  --lr X (0.06)  --width N (8)
  --arch resnet18|resnet34|resnet50  --stem cifar|imagenet  --head v1|v2  --dim N (128)
  --K N (4096)  --m X (0.99)  --T X (0.1)  --bn-splits N (8)  --symmetric  --wd X (5e-4)
  --augmentation gray|v1|v2 (gray for 1 channel, v2 otherwise)  --image-size N (native)
  --seed N (0)  --knn-k N (200)  --knn-t X (0.1)  --backend auto|tensorflow|native|wasm|cpu (auto)
  --save PATH   write the final training state (resumable with --resume)
  --resume PATH continue a saved run
  --export onnx|pytorch PATH   write the trained encoder for other tools: ONNX (outputs backbone and
                               head) or a torch.load file in facebookresearch/moco's layout
  --json        print JSON lines only
`;

const Options = z.object({
  dataset: z.string().default('fashion-mnist'),
  'eval-dataset': z.string().optional(),
  'train-limit': z.coerce.number().int().positive().default(4096),
  'test-limit': z.coerce.number().int().positive().default(10000),
  epochs: z.coerce.number().int().positive().default(6),
  'batch-size': z.coerce.number().int().min(2).default(64),
  lr: z.coerce.number().positive().default(0.06),
  width: z.coerce.number().int().positive().default(8),
  arch: z.enum(['resnet18', 'resnet34', 'resnet50']).default('resnet18'),
  stem: z.enum(['cifar', 'imagenet']).default('cifar'),
  head: z.enum(['v1', 'v2']).default('v1'),
  dim: z.coerce.number().int().positive().default(128),
  K: z.coerce.number().int().positive().default(4096),
  m: z.coerce.number().min(0).lt(1).default(0.99),
  T: z.coerce.number().positive().default(0.1),
  'bn-splits': z.coerce.number().int().positive().default(8),
  symmetric: z.boolean().default(false),
  wd: z.coerce.number().min(0).default(5e-4),
  augmentation: z.enum(['gray', 'v1', 'v2']).optional(),
  'image-size': z.coerce.number().int().positive().optional(),
  seed: z.coerce.number().int().default(0),
  'knn-k': z.coerce.number().int().positive().default(200),
  'knn-t': z.coerce.number().positive().default(0.1),
  backend,
  save: z.string().optional(),
  resume: z.string().optional(),
  export: z.enum(['onnx', 'pytorch']).optional(),
  json: z.boolean().default(false),
});

async function loadData(o: z.infer<typeof Options>): Promise<{ train: ImageDataset; test: ImageDataset | null }> {
  if (o.dataset === 'fashion-mnist') {
    return {
      train: await loadFashionMnist('train', { limit: o['train-limit'] }),
      test: await loadFashionMnist('test', { limit: o['test-limit'] }),
    };
  }
  const size = o['image-size'];
  const train = await readDataset(o.dataset, { limit: o['train-limit'], ...(size ? { imageSize: size } : {}) });
  const evalPath = o['eval-dataset'];
  const test = evalPath
    ? await readDataset(evalPath, {
        limit: o['test-limit'],
        imageSize: { height: train.height, width: train.width },
        channels: train.channels,
      })
    : null;
  return { train, test };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: Object.fromEntries(
      Object.keys(Options.shape).map((k) => [k, { type: k === 'symmetric' || k === 'json' ? 'boolean' : 'string' }]),
    ) as Record<string, { type: 'string' | 'boolean' }>,
    args: process.argv.slice(2).filter((a) => a !== '--help' && a !== '-h'),
    strict: true,
    // The export's PATH.
    allowPositionals: true,
  });
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(usage);
    return;
  }
  const parsed = Options.safeParse(values);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  --${i.path.join('.')}: ${i.message}`);
    throw new UsageError(`invalid options:\n${lines.join('\n')}`);
  }
  const o = parsed.data;
  if (o.export ? positionals.length !== 1 : positionals.length > 0) {
    throw new UsageError(o.export ? '--export needs one PATH after the format' : `unexpected argument ${positionals[0]}`);
  }
  const exportPath = positionals[0];
  const say = (human: string, json: Record<string, unknown>) =>
    process.stdout.write(o.json ? JSON.stringify(json) + '\n' : human + '\n');

  const backend = await initBackend({ prefer: o.backend, log: (line) => process.stderr.write(line + '\n') });
  const { train: trainSet, test } = await loadData(o);
  const config: MocoConfig = {
    ...cifarDemoDefaults,
    arch: o.arch,
    stem: o.stem,
    width: o.width,
    inChannels: trainSet.channels,
    head: o.head,
    dim: o.dim,
    K: o.K,
    m: o.m,
    T: o.T,
    bnSplits: o['bn-splits'],
    symmetric: o.symmetric,
    lr: o.lr,
    weightDecay: o.wd,
    epochs: o.epochs,
    batchSize: Math.min(o['batch-size'], trainSet.count),
  };
  const settings: RunSettings = {
    seed: o.seed,
    augmentation: o.augmentation ?? (trainSet.channels === 1 ? 'gray' : 'v2'),
    transform: { size: trainSet.height, ...meanStd(trainSet) },
  };
  const knn = { k: o['knn-k'], t: o['knn-t'] };
  const monitor = test && trainSet.labels && test.labels ? { bank: trainSet, test, ...knn } : undefined;

  const started = performance.now();
  let finalKnn: number | null = null;
  let epochs = config.epochs;
  let preprocessing: Preprocessing | undefined;
  const run = await train({
    train: trainSet,
    ...(monitor ? { monitor } : {}),
    ...(o.resume ? { resume: new Uint8Array(await readFile(o.resume)) } : { config, settings }),
    onStart: async (moco, progress) => {
      // A resumed run goes on with the config and settings in its state, whatever the options say.
      const c = moco.config;
      epochs = c.epochs;
      const run = progress.extra?.settings as RunSettings;
      preprocessing = { ...run.transform, channels: c.inChannels };
      say(
        `MoCo on ${o.dataset}: ${trainSet.count} train images ${trainSet.height}x${trainSet.width}x${trainSet.channels}` +
          `${test ? `, ${test.count} test images` : ''}; ${c.arch} width ${c.width}, batch ${c.batchSize}, ` +
          `K ${c.K}, m ${c.m}, T ${c.T}, lr ${c.lr}, bn_splits ${c.bnSplits}, ${c.epochs} epochs, ` +
          `backend ${backend.name}${o.resume ? `, resumed at step ${progress.step}` : ''}`,
        {
          event: 'start',
          dataset: o.dataset,
          train_images: trainSet.count,
          test_images: test?.count ?? 0,
          backend: backend.name,
          resumed_at_step: o.resume ? progress.step : null,
          config: c,
          settings: run,
        },
      );
      if (!monitor || progress.step > 0) return;
      // Baselines: what training has to beat.
      const randomInit = 100 * (await knnAccuracy(moco.query, monitor.bank, monitor.test, run.transform, knn));
      const rawPixels = 100 * (await rawPixelKnnAccuracy(monitor.bank, monitor.test, run.transform, knn));
      say(`kNN of the randomly initialised encoder ${randomInit.toFixed(2)}%, of raw pixels ${rawPixels.toFixed(2)}%`, {
        random_init_knn: randomInit,
        raw_pixel_knn: rawPixels,
      });
    },
    onEpoch: (e) => {
      if (e.knnAccuracy !== undefined) finalKnn = 100 * e.knnAccuracy;
      say(
        `epoch ${e.epoch}/${epochs}  loss ${e.loss.toFixed(4)}  lr ${e.lr.toFixed(4)}  ` +
          `${e.imagesPerSecond.toFixed(1)} img/s` +
          (e.knnAccuracy !== undefined ? `  kNN ${(100 * e.knnAccuracy).toFixed(2)}%` : ''),
        {
          epoch: e.epoch,
          loss: e.loss,
          lr: e.lr,
          images_per_s: e.imagesPerSecond,
          seconds: e.seconds,
          ...(e.knnAccuracy !== undefined ? { knn_acc: 100 * e.knnAccuracy } : {}),
        },
      );
    },
    ...(o.save ? { onCheckpoint: (state: Uint8Array) => writeFile(o.save!, state) } : {}),
  });
  if (o.export) {
    const state = await saveTrainingState(run.moco, run.progress);
    const bytes = o.export === 'onnx' ? exportOnnx(state, { output: 'head', preprocessing: preprocessing! }) : exportPytorch(state, { preprocessing: preprocessing! });
    await writeFile(exportPath!, bytes);
  }
  say(`done in ${((performance.now() - started) / 1000).toFixed(1)} s${o.save ? `; state saved to ${o.save}` : ''}${o.export ? `; ${o.export} export written to ${exportPath}` : ''}`, {
    final_knn: finalKnn,
    epochs: run.progress.epoch,
    steps: run.progress.step,
    seconds: (performance.now() - started) / 1000,
    backend: backend.name,
    ...(o.save ? { state: o.save } : {}),
    ...(o.export ? { export: exportPath } : {}),
  });
  run.moco.dispose();
}

class UsageError extends Error {}

main().catch((err: unknown) => {
  process.stderr.write(`train:local: ${err instanceof Error ? err.message : String(err)}\n`);
  if (err instanceof UsageError) process.stderr.write(`\n${usage}`);
  process.exit(1);
});
