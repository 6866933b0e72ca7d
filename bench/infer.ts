// `npm run bench:infer`: images/s of embedding (eval-mode forward, head output, L2-normalised),
// TypeScript (Encoder.embed) against PyTorch.
import { Encoder, Rng, tf } from '@moco/moco';
import { benchMain, timeSteps } from './harness.js';

const description = `Times embedding one batch (eval-mode BN, backbone + projection head, L2-normalised) with ResNet-18
(CIFAR stem) on pre-made random 32x32x3 images: our Encoder.embed (frozen, BN folded, as the embedder
serves) in one process, then the same
moco_model.ResNet (PyTorch) in another, per width and batch size (PyTorch slows down per image past
batch 32 on small-cache machines, so both 128 and 32 are shown; 8 and 1 are the sizes a serving request
has). Prints one JSON object.`;

await benchMain({
  name: 'infer',
  description,
  entry: import.meta.url,
  torchScript: 'torch_infer.py',
  defaultBatches: [128, 32, 8, 1],
  auto: { minSteps: 3, maxSteps: 30, budgetS: 5 },
  quick: { minSteps: 1, maxSteps: 1, budgetS: 0 },
  async measure({ config, batch, size, schedule }) {
    const encoder = new Encoder(config, new Rng(0));
    // As the embedder serves it: BN folded into the convolutions once.
    encoder.freeze();
    const images = tf.randomNormal([batch, size, size, config.inChannels], 0, 1, 'float32', 1) as tf.Tensor4D;
    return timeSteps(batch, schedule, () => encoder.embed(images, { normalize: true, batchSize: batch }));
  },
});
