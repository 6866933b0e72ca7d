// Side-by-side timing of Moco.step and Encoder.embed on backends 'native' and 'wasm' in one process,
// plus a per-kernel time breakdown on 'native'.
//   npx tsx libs/native-kernels/bench/spike.ts [--width 16] [--batch 128] [--steps 3] [--backends native,wasm]
import { parseArgs } from 'node:util';
import { cifarDemoDefaults, Encoder, initBackend, Moco, Rng, tf } from '@moco/moco';
import { NATIVE_BACKEND, registerNativeBackend } from '../src/index.js';

const { values } = parseArgs({
  options: {
    width: { type: 'string', default: '16' },
    batch: { type: 'string', default: '128' },
    steps: { type: 'string', default: '3' },
    backends: { type: 'string', default: 'native,wasm' },
    'no-profile': { type: 'boolean', default: false },
  },
});
const width = Number(values.width);
const batch = Number(values.batch);
const steps = Number(values.steps);
const config = { ...cifarDemoDefaults, width } as typeof cifarDemoDefaults;

const kernelMs = new Map<string, { ms: number; calls: number }>();
function instrument(): void {
  for (const k of tf.getKernelsForBackend(NATIVE_BACKEND)) {
    const inner = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, NATIVE_BACKEND);
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        const t0 = performance.now();
        const out = inner(args);
        const e = kernelMs.get(k.kernelName) ?? { ms: 0, calls: 0 };
        e.ms += performance.now() - t0;
        e.calls++;
        kernelMs.set(k.kernelName, e);
        return out;
      },
    });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function time(fn: () => unknown, n: number): Promise<number[]> {
  await fn();
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return ms;
}

const results: Record<string, unknown>[] = [];
const { detail } = registerNativeBackend();
console.error(detail);
if (!values['no-profile']) instrument();
for (const backend of values.backends!.split(',')) {
  if (backend === NATIVE_BACKEND) {
    if (!(await tf.setBackend(NATIVE_BACKEND))) throw new Error('native failed');
  } else await initBackend({ prefer: backend as 'wasm' });
  const rng = new Rng(0);
  const moco = new Moco(config, rng);
  const [xq, xk] = [1, 2].map((seed) => tf.randomNormal([batch, 32, 32, 3], 0, 1, 'float32', seed) as tf.Tensor4D);
  kernelMs.clear();
  const train = await time(() => moco.step(xq!, xk!, config.lr, rng), steps);
  const trainKernels = [...kernelMs.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const encoder = new Encoder(config, new Rng(0));
  kernelMs.clear();
  const embed = await time(async () => {
    const e = encoder.embed(xq!, { normalize: true, batchSize: batch });
    return e;
  }, steps * 3);
  const embedKernels = [...kernelMs.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const r = {
    backend,
    train_ms: train.map((x) => Math.round(x)),
    train_img_s: Math.round((batch * 1000) / median(train)),
    embed_ms: embed.map((x) => Math.round(x)),
    embed_img_s: Math.round((batch * 1000) / median(embed)),
  };
  results.push(r);
  console.error(JSON.stringify(r));
  if (backend === NATIVE_BACKEND && !values['no-profile']) {
    const per = (list: typeof trainKernels, n: number) =>
      list.slice(0, 14).map(([name, v]) => `  ${name.padEnd(22)} ${(v.ms / n).toFixed(1).padStart(7)} ms/step  ${(v.calls / n).toFixed(0)} calls`).join('\n');
    console.error(`native train kernels (per step, incl. warmup averaged over ${steps + 1}):\n${per(trainKernels, steps + 1)}`);
    console.error(`native embed kernels (per call):\n${per(embedKernels, steps * 3 + 1)}`);
  }
  tf.disposeVariables();
  tf.dispose([xq!, xk!]);
}
console.log(JSON.stringify({ width, batch, load: (await import('node:os')).loadavg(), results }));
