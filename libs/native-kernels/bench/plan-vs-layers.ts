// A served encoder's embedding call with the backbone as one native plan (RESNET_FEATURES_KERNEL)
// against the same encoder run layer by layer through tfjs (the kernel unregistered), interleaved call
// by call in one process, on backend 'native'. Prints one JSON object.
//   npx tsx libs/native-kernels/bench/plan-vs-layers.ts [--widths 16,64] [--batches 128,32,8,1]
import { parseArgs } from 'node:util';
import { cifarDemoDefaults, Encoder, Rng, tf } from '@moco/moco';
import { registerNativeBackend, RESNET_FEATURES_KERNEL } from '../src/index.js';

const { values } = parseArgs({ options: { widths: { type: 'string', default: '16,64' }, batches: { type: 'string', default: '128,32,8,1' } } });
const list = (s: string) => s.split(',').map(Number);
const { detail } = registerNativeBackend();
await tf.setBackend('native');
const kernel = tf.getKernel(RESNET_FEATURES_KERNEL, 'native')!;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const results = [];
for (const width of list(values.widths)) {
  for (const batch of list(values.batches)) {
    const encoder = new Encoder({ ...cifarDemoDefaults, width }, new Rng(0));
    encoder.freeze();
    const images = tf.randomNormal([batch, 32, 32, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const ms = { plan: [] as number[], layers: [] as number[] };
    // About the same time per configuration; the first two rounds warm up (compile, pack filters).
    const rounds = Math.max(10, Math.min(60, Math.round(2000 / (batch * width * 0.02))));
    for (let r = 0; r < rounds + 2; r++) {
      for (const mode of ['plan', 'layers'] as const) {
        if (mode === 'layers') tf.unregisterKernel(RESNET_FEATURES_KERNEL, 'native');
        const t0 = performance.now();
        await encoder.embed(images, { normalize: true, batchSize: batch });
        if (r >= 2) ms[mode].push(performance.now() - t0);
        if (mode === 'layers') tf.registerKernel(kernel);
      }
    }
    const [plan, layers] = [median(ms.plan), median(ms.layers)];
    results.push({ width, batch, calls: rounds, plan_ms_median: +plan.toFixed(2), layers_ms_median: +layers.toFixed(2), speedup: +(layers / plan).toFixed(2) });
    encoder.dispose();
    images.dispose();
  }
}
console.log(JSON.stringify({ bench: 'plan-vs-layers', backend: detail, results }, null, 2));
