// `npm run -s bench:memory`: the training-memory estimate (estimateTrainingMemory, which the API
// refuses jobs by) against the measured peak of real training steps on the wasm backend, whose
// heap stops at 4 GiB. Each case runs in a process of its own (a wasm heap only grows: its size
// after the steps is their peak). Prints one JSON object.
import { execFile } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cifarDemoDefaults, estimateTrainingMemory, initBackend, Moco, Rng, tf, wasmHeapBytes, type MocoConfig } from '@moco/moco';

interface Case {
  width: number;
  batch: number;
  size: number;
  channels: 1 | 3;
  /** The small-image recipe's loss: both views through the query encoder. */
  symmetric?: boolean;
}

/** Small to mid-sized steps, varying one factor at a time, that the wasm backend runs in seconds to minutes here. */
const CASES: Case[] = [
  { width: 8, batch: 32, size: 32, channels: 3 },
  { width: 16, batch: 32, size: 32, channels: 3 },
  { width: 32, batch: 32, size: 32, channels: 3 },
  { width: 16, batch: 64, size: 32, channels: 3 },
  { width: 16, batch: 128, size: 32, channels: 3 },
  { width: 16, batch: 64, size: 28, channels: 1 },
  { width: 16, batch: 64, size: 28, channels: 1, symmetric: true },
  { width: 16, batch: 64, size: 32, channels: 3, symmetric: true },
];
const STEPS = 2;

const configOf = (c: Case): MocoConfig => ({ ...cifarDemoDefaults, width: c.width, batchSize: c.batch, inChannels: c.channels, symmetric: c.symmetric ?? false });
const mb = (bytes: number) => Number((bytes / 2 ** 20).toFixed(1));

/** One case, in this (child) process: the wasm heap and the tensors' peak after STEPS steps. */
async function measure(c: Case): Promise<void> {
  await initBackend({ prefer: 'wasm' });
  const config = configOf(c);
  const rng = new Rng(0);
  const moco = new Moco(config, rng);
  const [xq, xk] = [1, 2].map((seed) => tf.randomNormal([c.batch, c.size, c.size, c.channels], 0, 1, 'float32', seed) as tf.Tensor4D);
  let tensorPeak = 0;
  for (let i = 0; i < STEPS; i++) {
    const profile = await tf.profile(() => void moco.step(xq!, xk!, config.lr, rng));
    tensorPeak = Math.max(tensorPeak, profile.peakBytes);
  }
  process.stdout.write(JSON.stringify({ heap_mb: mb(wasmHeapBytes()), tensor_peak_mb: mb(tensorPeak) }));
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return measure(JSON.parse(process.argv[3]!) as Case);
  const results = [];
  for (const c of CASES) {
    const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', JSON.stringify(c)], {
      maxBuffer: 1 << 20,
    });
    const measured = JSON.parse(stdout) as { heap_mb: number; tensor_peak_mb: number };
    const estimate = estimateTrainingMemory(configOf(c), c.size);
    const row = { ...c, ...measured, estimate_mb: mb(estimate.bytes), estimate_over_heap: Number((estimate.bytes / 2 ** 20 / measured.heap_mb).toFixed(3)), parts_mb: Object.fromEntries(Object.entries(estimate.parts).map(([k, v]) => [k, mb(v)])), parameters: estimate.parameters, activations_per_image: estimate.activationsPerImage };
    process.stderr.write(`${JSON.stringify(row)}\n`);
    results.push(row);
  }
  const ratios = results.map((r) => r.estimate_over_heap);
  process.stdout.write(
    `${JSON.stringify(
      {
        bench: 'memory-estimate',
        what: 'estimateTrainingMemory vs the wasm heap after real Moco.step calls (ResNet-18, CIFAR stem, K 4096, dim 128, bn_splits 8)',
        steps: STEPS,
        results,
        estimate_over_heap: { min: Math.min(...ratios), max: Math.max(...ratios) },
        machine: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? 'unknown', node: process.version, tfjs: tf.version_core, load_avg: os.loadavg().map((x) => Number(x.toFixed(2))) },
      },
      null,
      2,
    )}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
