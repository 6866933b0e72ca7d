// Local MoCo training without the service: `npm run train:local -- --help`.
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { backend, fashionMnistEnv, loadConfig } from '@moco/config';
import { resolveHyperparameters, toMocoConfig, type HyperparametersInput } from '@moco/contracts';
import { findFashionMnist, loadFashionMnist, meanStd, readDataset, type ImageDataset } from '@moco/data';
import { initBackend, saveTrainingState } from '@moco/moco';
import { exportOnnx, exportPytorch, type Preprocessing } from '@moco/moco/export';
import { knnAccuracy, rawPixelKnnAccuracy, train, type RunSettings } from '@moco/trainer';
import { z } from 'zod';

const usage = `Usage: npm run train:local -- [options]

Trains MoCo locally and prints, per epoch, the loss, images/s and kNN accuracy on the test set,
after the kNN accuracy of the randomly initialised encoder and of raw pixels.

  --dataset fashion-mnist|PATH   training images (default fashion-mnist: the full set in FASHION_MNIST_DIR,
                                 default Debian's dataset-fashion-mnist, else the subset shipped in libs/data)
  --eval-dataset PATH            labelled test images for the kNN monitor (fashion-mnist: its test split)
  --train-limit N --test-limit N use the first N images (default 4096 / 10000)
  --epochs N (6)  --width N (8)  (short-run defaults; the service's recipe would train wider and longer)
  --batch-size N  --lr X  --bn-splits N  --K N  --knn-k N
  --arch resnet18|resnet34|resnet50  --stem cifar|imagenet  --head v1|v2  --dim N
  --m X  --T X  --symmetric|--no-symmetric  --wd X  --augmentation gray|v1|v2  --image-size N (native)
  --seed N (0)  --knn-t X  --backend auto|tensorflow|native|wasm|cpu (auto)
  Unset MoCo knobs come from the service's recipe for the images' size and count, as a job's
  would (the start line prints them); settings known to train badly are printed as warnings.
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
  'batch-size': z.coerce.number().int().min(2).optional(),
  lr: z.coerce.number().positive().optional(),
  width: z.coerce.number().int().positive().default(8),
  arch: z.enum(['resnet18', 'resnet34', 'resnet50']).optional(),
  stem: z.enum(['cifar', 'imagenet']).optional(),
  head: z.enum(['v1', 'v2']).optional(),
  dim: z.coerce.number().int().positive().optional(),
  K: z.coerce.number().int().positive().optional(),
  m: z.coerce.number().min(0).lt(1).optional(),
  T: z.coerce.number().positive().optional(),
  'bn-splits': z.coerce.number().int().positive().optional(),
  symmetric: z.boolean().optional(),
  wd: z.coerce.number().min(0).optional(),
  augmentation: z.enum(['gray', 'v1', 'v2']).optional(),
  'image-size': z.coerce.number().int().positive().optional(),
  seed: z.coerce.number().int().default(0),
  'knn-k': z.coerce.number().int().positive().optional(),
  'knn-t': z.coerce.number().positive().optional(),
  backend,
  save: z.string().optional(),
  resume: z.string().optional(),
  export: z.enum(['onnx', 'pytorch']).optional(),
  json: z.boolean().default(false),
});

type Options = z.infer<typeof Options>;

async function loadData(o: Options, log: (line: string) => void): Promise<{ train: ImageDataset; test: ImageDataset | null }> {
  if (o.dataset === 'fashion-mnist') {
    const source = await findFashionMnist(loadConfig(z.object(fashionMnistEnv)).FASHION_MNIST_DIR);
    log(source.description);
    return {
      train: await loadFashionMnist('train', { limit: o['train-limit'], dir: source.dir }),
      test: await loadFashionMnist('test', { limit: o['test-limit'], dir: source.dir }),
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
    // --no-symmetric: the recipe's loss for small images is symmetric.
    allowNegative: true,
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
  const { train: trainSet, test } = await loadData(o, (line) => process.stderr.write(line + '\n'));
  // The service's recipe for this dataset's size fills what the options leave out.
  const { value: hp, problems, warnings } = resolveHyperparameters(hyperparameterOptions(o), {
    height: trainSet.height,
    width: trainSet.width,
    channels: trainSet.channels,
    imageCount: trainSet.count,
  });
  if (problems.length > 0) {
    throw new UsageError(`invalid options:\n${problems.map((p) => `  ${p.field.replace('hyperparameters.', '')}: ${p.message}`).join('\n')}`);
  }
  const config = toMocoConfig(hp, trainSet.channels);
  const settings: RunSettings = {
    seed: o.seed,
    augmentation: hp.augmentation,
    transform: { size: trainSet.height, ...meanStd(trainSet) },
  };
  const knn = { k: hp.knn_k, t: hp.knn_t };
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
      // Settings known to train badly; a resumed run keeps its own.
      const shown = o.resume ? [] : warnings;
      preprocessing = { ...run.transform, channels: c.inChannels };
      say(
        `MoCo on ${o.dataset}: ${trainSet.count} train images ${trainSet.height}x${trainSet.width}x${trainSet.channels}` +
          `${test ? `, ${test.count} test images` : ''}; ${c.arch} width ${c.width}, batch ${c.batchSize}, ` +
          `K ${c.K}, m ${c.m}, T ${c.T}, lr ${c.lr}, bn_splits ${c.bnSplits}, ${c.epochs} epochs, ` +
          `backend ${backend.name}${o.resume ? `, resumed at step ${progress.step}` : ''}` +
          shown.map((w) => `\nwarning: ${w.field.replace('hyperparameters.', '')} ${w.message}`).join(''),
        {
          event: 'start',
          dataset: o.dataset,
          train_images: trainSet.count,
          test_images: test?.count ?? 0,
          backend: backend.name,
          resumed_at_step: o.resume ? progress.step : null,
          config: c,
          settings: run,
          warnings: shown,
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

/** The MoCo knobs the options set, in the service's names; the rest come from its recipe. */
function hyperparameterOptions(o: Options): HyperparametersInput {
  const set: HyperparametersInput = {
    encoder: o.arch,
    stem: o.stem,
    width: o.width,
    head: o.head,
    dim: o.dim,
    K: o.K,
    m: o.m,
    T: o.T,
    batch_size: o['batch-size'],
    lr: o.lr,
    weight_decay: o.wd,
    epochs: o.epochs,
    augmentation: o.augmentation,
    bn_splits: o['bn-splits'],
    symmetric: o.symmetric,
    knn_k: o['knn-k'],
    knn_t: o['knn-t'],
  };
  return Object.fromEntries(Object.entries(set).filter(([, v]) => v !== undefined));
}

class UsageError extends Error {}

main().catch((err: unknown) => {
  process.stderr.write(`train:local: ${err instanceof Error ? err.message : String(err)}\n`);
  if (err instanceof UsageError) process.stderr.write(`\n${usage}`);
  process.exit(1);
});
