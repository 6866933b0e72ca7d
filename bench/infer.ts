// `npm run bench:infer`: images/s of embedding (eval-mode forward, head output, L2-normalised),
// TypeScript (Encoder.embed) against PyTorch.
import { Encoder, Rng, tf } from '@moco/moco';
import { benchMain, timeSteps } from './harness.js';

const usage = `Usage: npm run bench:infer -- [options]

Times embedding one batch (eval-mode BN, backbone + projection head, L2-normalised) with ResNet-18
(CIFAR stem) on pre-made random 32x32x3 images: our Encoder.embed in one process, then the same
moco_model.ResNet (PyTorch) in another, per width and batch size. Prints one JSON object.

  --widths 16,64        ResNet widths (default 16,64; 16 with --quick)
  --batch 128,32        batch sizes, comma-separated (default 128,32: PyTorch slows down per image
                        past batch 32 on small-cache machines, so both are shown)
  --steps N             exactly N timed batches per side (default: 3 to 30, within --budget-s)
  --warmup N            untimed batches first (default 1)
  --budget-s S          seconds of timed batches per side once the minimum is done (default 5)
  --backend auto|wasm|cpu|tensorflow   tfjs backend (default auto)
  --threads N           PyTorch threads (default 2)
  --quick               width 16, 1 timed batch
`;

await benchMain({
  name: 'infer',
  usage,
  entry: import.meta.url,
  torchScript: 'torch_infer.py',
  defaultBatches: [128, 32],
  auto: { minSteps: 3, maxSteps: 30, budgetS: 5 },
  quick: { minSteps: 1, maxSteps: 1, budgetS: 0 },
  async measure({ config, batch, size, schedule }) {
    const encoder = new Encoder(config, new Rng(0));
    const images = tf.randomNormal([batch, size, size, config.inChannels], 0, 1, 'float32', 1) as tf.Tensor4D;
    return timeSteps(batch, schedule, () => encoder.embed(images, { normalize: true, batchSize: batch }));
  },
});
