// The recipe study: the published small-image MoCo recipe against a candidate change to it at the
// same budget, on Fashion-MNIST, in our trainer (`train:local`) and in the PyTorch reference
// (`train_reference.py`), several seeds each. `npm run study:recipe -- --help`.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { resolveHyperparameters, toMocoConfig } from '@moco/contracts';
import { cifarDemoDefaults, type MocoConfig } from '@moco/moco/config';
import { z } from 'zod';
import { findTorchPython, referenceDir } from '../libs/moco/src/testing/torch-reference.js';

const usage = `Usage: npm run -s study:recipe -- [options]

Trains every recipe x engine x seed on the same Fashion-MNIST budget and prints one JSON object:
the runs, each recipe's mean kNN accuracy per engine, and the candidate's gain over the published
recipe (cifarDemoDefaults), seed by seed. Progress goes to stderr.

  --candidate service|JSON service (default): the service's own recipe for this budget (what
                           resolveHyperparameters fills in for --train-limit 28x28 gray images at
                           this batch and epochs); or JSON: what the candidate changes in the
                           published recipe, among K, m, T, lr, weightDecay, bnSplits, head, dim,
                           symmetric (e.g. {"head":"v2","T":0.2})
  --seeds N (3)            seeds 0..N-1
  --train-limit N (2048)   first N training images (also the kNN bank)
  --test-limit N (2000)    first N test images, voted on by the bank (k 200, t 0.1)
  --epochs N (3)  --width N (8)  --batch-size N (64)
  --engines ts,torch       which trainers run (ts: npm run train:local; torch: train_reference.py)
  --parallel N (2)         runs at a time, each on --threads N (1) threads
`;

/** The recipe fields a candidate may change; the budget options fix the rest. */
const CandidateChanges = z
  .object({
    K: z.number().int().positive(),
    m: z.number().min(0).lt(1),
    T: z.number().positive(),
    lr: z.number().positive(),
    weightDecay: z.number().min(0),
    bnSplits: z.number().int().positive(),
    head: z.enum(['v1', 'v2']),
    dim: z.number().int().positive(),
    symmetric: z.boolean(),
  })
  .partial()
  .strict();

const Options = z.object({
  candidate: z
    .string()
    .default('service')
    .transform((s, ctx) => {
      if (s === 'service') return null;
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON object' });
        return z.NEVER;
      }
    })
    .pipe(CandidateChanges.nullable()),
  seeds: z.coerce.number().int().positive().default(3),
  'train-limit': z.coerce.number().int().positive().default(2048),
  'test-limit': z.coerce.number().int().positive().default(2000),
  epochs: z.coerce.number().int().positive().default(3),
  width: z.coerce.number().int().positive().default(8),
  'batch-size': z.coerce.number().int().min(2).default(64),
  engines: z
    .string()
    .default('ts,torch')
    .transform((s) => s.split(','))
    .pipe(z.array(z.enum(['ts', 'torch'])).nonempty()),
  parallel: z.coerce.number().int().positive().default(2),
  threads: z.coerce.number().int().positive().default(1),
});
type Options = z.infer<typeof Options>;
type Engine = Options['engines'][number];

interface Run {
  engine: Engine;
  recipe: string;
  seed: number;
  final_knn: number;
  random_init_knn: number;
  raw_pixel_knn: number;
  seconds: number;
}

/** The fields a recipe sets in the study, named as the options of both train:local and train_reference.py. */
function recipeOptions(c: MocoConfig) {
  return { K: c.K, m: c.m, T: c.T, lr: c.lr, wd: c.weightDecay, 'bn-splits': c.bnSplits, head: c.head, dim: c.dim, symmetric: c.symmetric };
}

function recipeFlags(engine: Engine, c: MocoConfig): string[] {
  const { symmetric, ...valued } = recipeOptions(c);
  // train:local's default loss follows the service's recipe, so it is told both ways; the reference's is asymmetric.
  const loss = symmetric ? ['--symmetric'] : engine === 'ts' ? ['--no-symmetric'] : [];
  return [...Object.entries(valued).flatMap(([k, v]) => [`--${k}`, String(v)]), ...loss];
}

/** What the service would train these images with at this budget (its recipe for the image size and count). */
function serviceRecipe(o: Options): MocoConfig {
  const shape = { height: 28, width: 28, channels: 1, imageCount: o['train-limit'] };
  const { value, problems } = resolveHyperparameters({ batch_size: o['batch-size'], epochs: o.epochs, width: o.width }, shape);
  if (problems.length > 0) throw new Error(`the service refuses this budget: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}`);
  return toMocoConfig(value, shape.channels);
}

/** The kNN monitor of both trainers: the MoCo CIFAR demo's weighted vote. */
const KNN = { k: 200, t: 0.1 };

function budgetFlags(o: Options): string[] {
  const keys = ['train-limit', 'test-limit', 'epochs', 'width', 'batch-size'] as const;
  return [...keys.flatMap((k) => [`--${k}`, String(o[k])]), '--knn-k', String(KNN.k), '--knn-t', String(KNN.t)];
}

const root = fileURLToPath(new URL('..', import.meta.url));

function command(engine: Engine, o: Options, python: string | null): { file: string; args: string[] } {
  if (engine === 'ts') return { file: process.execPath, args: ['--import', 'tsx', 'apps/cli/src/train-local.ts'] };
  if (!python) throw new Error(findTorchPython().reason);
  return { file: python, args: [referenceDir + 'train_reference.py', '--threads', String(o.threads)] };
}

/** Runs one trainer to the end and reads its JSON lines. */
function runOne(engine: Engine, recipe: string, config: MocoConfig, seed: number, o: Options, python: string | null): Promise<Run> {
  const { file, args } = command(engine, o, python);
  const all = [...args, ...budgetFlags(o), ...recipeFlags(engine, config), '--seed', String(seed), '--json'];
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(file, all, {
      cwd: root,
      // One thread per run: runs go side by side instead (the native backend's OpenMP threads).
      env: { ...process.env, MOCO_NATIVE_THREADS: String(o.threads) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${engine} ${recipe} seed ${seed} exited with ${code}:\n${err.slice(-2000)}`));
      const fields: Record<string, number> = {};
      for (const line of out.split('\n').filter(Boolean)) Object.assign(fields, JSON.parse(line));
      const { final_knn, random_init_knn, raw_pixel_knn } = fields;
      if (final_knn === undefined || random_init_knn === undefined || raw_pixel_knn === undefined) {
        return reject(new Error(`${engine} ${recipe} seed ${seed}: no kNN figures in its output`));
      }
      resolve({ engine, recipe, seed, final_knn, random_init_knn, raw_pixel_knn, seconds: (performance.now() - started) / 1000 });
    });
  });
}

/** Runs `jobs` with at most `limit` at a time, results in the jobs' order. */
async function pool<T>(jobs: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

const round = (x: number) => Number(x.toFixed(2));

function meanSd(xs: number[]): { mean: number; sd: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean: round(mean), sd: round(sd) };
}

async function main(): Promise<void> {
  if (process.argv.includes('--help')) return void process.stdout.write(usage);
  const { values } = parseArgs({
    options: Object.fromEntries(Object.keys(Options.shape).map((k) => [k, { type: 'string' }])) as Record<string, { type: 'string' }>,
    strict: true,
  });
  const parsed = Options.safeParse(values);
  if (!parsed.success) {
    process.stderr.write(`study:recipe: ${parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ')}\n\n${usage}`);
    process.exit(1);
  }
  const o = parsed.data;
  const python = o.engines.includes('torch') ? findTorchPython().python : null;
  const seeds = Array.from({ length: o.seeds }, (_, i) => i);
  const recipes: Record<string, MocoConfig> = {
    published: cifarDemoDefaults,
    candidate: o.candidate ? { ...cifarDemoDefaults, ...o.candidate } : serviceRecipe(o),
  };
  const jobs = o.engines.flatMap((engine) =>
    seeds.flatMap((seed) =>
      Object.entries(recipes).map(([recipe, config]) => async () => {
        const run = await runOne(engine, recipe, config, seed, o, python);
        process.stderr.write(`${engine} ${recipe} seed ${seed}: kNN ${run.final_knn.toFixed(2)} (${run.seconds.toFixed(0)} s)\n`);
        return run;
      }),
    ),
  );
  const runs = await pool(jobs, o.parallel);

  const knn = (engine: Engine, recipe: string) =>
    seeds.map((s) => runs.find((r) => r.engine === engine && r.recipe === recipe && r.seed === s)!.final_knn);
  const summary = o.engines.flatMap((engine) =>
    Object.keys(recipes).map((recipe) => ({ engine, recipe, ...meanSd(knn(engine, recipe)), n: o.seeds })),
  );
  const gain = o.engines.map((engine) => {
    const perSeed = seeds.map((_, i) => round(knn(engine, 'candidate')[i]! - knn(engine, 'published')[i]!));
    return { engine, ...meanSd(perSeed), per_seed: perSeed };
  });
  const baselines = o.engines.map((engine) => {
    const of = runs.filter((r) => r.engine === engine);
    return { engine, raw_pixel_knn: of[0]!.raw_pixel_knn, random_init_knn: meanSd(of.map((r) => r.random_init_knn)).mean };
  });
  const budget = {
    dataset: 'fashion-mnist',
    train_images: o['train-limit'],
    test_images: o['test-limit'],
    epochs: o.epochs,
    width: o.width,
    batch_size: o['batch-size'],
    knn: KNN,
  };
  process.stdout.write(JSON.stringify({ budget, recipes: Object.fromEntries(Object.entries(recipes).map(([name, c]) => [name, recipeOptions(c)])), summary, gain, baselines, runs }, null, 1) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`study:recipe: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
