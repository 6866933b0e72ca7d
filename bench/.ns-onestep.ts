import { cifarDemoDefaults, Moco, Rng, tf, initBackend } from '@moco/moco';
const width = Number(process.argv[2] ?? 16), batch = Number(process.argv[3] ?? 128), steps = Number(process.argv[4] ?? 2);
await initBackend({ prefer: 'native' });
const config = { ...cifarDemoDefaults, width, batchSize: batch };
const rng = new Rng(0);
const moco = new Moco(config, rng);
const [xq, xk] = [1, 2].map((seed) => tf.randomNormal([batch, 32, 32, 3], 0, 1, 'float32', seed) as tf.Tensor4D);
for (let i = 0; i < steps; i++) {
  const c0 = process.cpuUsage(); const t0 = performance.now();
  moco.step(xq!, xk!, config.lr, rng);
  const c = process.cpuUsage(c0);
  console.error(`step ${i}: wall ${(performance.now() - t0).toFixed(0)} ms, cpu ${((c.user + c.system) / 1000).toFixed(0)} ms, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB, maxrss ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
}
