// `npm run bench:train`: images/s of one MoCo training step, TypeScript (Moco.step) against PyTorch.
import { Moco, Rng, tf } from '@moco/moco';
import { benchMain, timeSteps } from './harness.js';

const description = `Times one MoCo training step (query forward + backward, key forward with shuffle-BN, momentum update,
queue update, SGD) of ResNet-18 (CIFAR stem) on pre-made random 32x32x3 batches: our Moco.step in
one process, then moco_model.train_step (PyTorch) in another, per width and batch size (128, and 256 as
the published recipe trains). Prints one JSON object.`;

await benchMain({
  name: 'train-step',
  description,
  entry: import.meta.url,
  torchScript: 'torch_train_step.py',
  defaultBatches: [128, 256],
  auto: { minSteps: 2, maxSteps: 10, budgetS: 10 },
  quick: { minSteps: 1, maxSteps: 1, budgetS: 0 },
  async measure({ config, batch, size, schedule }) {
    const rng = new Rng(0);
    const moco = new Moco(config, rng);
    const [xq, xk] = [1, 2].map((seed) => tf.randomNormal([batch, size, size, config.inChannels], 0, 1, 'float32', seed) as tf.Tensor4D);
    return timeSteps(batch, schedule, () => moco.step(xq!, xk!, config.lr, rng));
  },
});
