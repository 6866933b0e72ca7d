import { describe, expect, it } from 'vitest';
import { initBackend, wasmHeapBytes } from './backend/select-backend.js';
import { cifarDemoDefaults, estimateTrainingMemory, type MocoConfig } from './config.js';
import { Moco } from './moco.js';
import { Rng } from './rng.js';
import * as tf from './tf.js';

describe('estimateTrainingMemory', () => {
  it('is within 15% of the wasm heap two real training steps take (width 8, batch 32, 32x32x3)', async () => {
    await initBackend({ prefer: 'wasm' });
    const config: MocoConfig = { ...cifarDemoDefaults, width: 8, batchSize: 32 };
    const rng = new Rng(0);
    const moco = new Moco(config, rng);
    const [xq, xk] = [1, 2].map((seed) => tf.randomNormal([32, 32, 32, 3], 0, 1, 'float32', seed) as tf.Tensor4D);
    for (let i = 0; i < 2; i++) moco.step(xq!, xk!, config.lr, rng);
    // The heap only grows: its size now is the peak of this process's tensors and kernels.
    const measured = wasmHeapBytes();
    const estimate = estimateTrainingMemory(config, 32).bytes;
    expect(estimate / measured).toBeGreaterThan(0.85);
    expect(estimate / measured).toBeLessThan(1.15);
  }, 300_000);

  it('grows with width, batch, image size and queue, and counts a symmetric loss twice over the activations', () => {
    const base = estimateTrainingMemory({ ...cifarDemoDefaults, width: 16, batchSize: 64 }, 32);
    for (const bigger of [
      estimateTrainingMemory({ ...cifarDemoDefaults, width: 32, batchSize: 64 }, 32),
      estimateTrainingMemory({ ...cifarDemoDefaults, width: 16, batchSize: 128 }, 32),
      estimateTrainingMemory({ ...cifarDemoDefaults, width: 16, batchSize: 64 }, 64),
      estimateTrainingMemory({ ...cifarDemoDefaults, width: 16, batchSize: 64, K: 65536 }, 32),
    ]) {
      expect(bigger.bytes).toBeGreaterThan(base.bytes);
    }
    const symmetric = estimateTrainingMemory({ ...cifarDemoDefaults, width: 16, batchSize: 64, symmetric: true }, 32);
    expect(symmetric.parts.activations).toBe(2 * base.parts.activations);
    // ResNet-18 at width 64 has torchvision's 11.2 M backbone parameters (plus the 512x128 head).
    expect(estimateTrainingMemory(cifarDemoDefaults, 32).parameters).toBe(11_168_832 + 512 * 128 + 128);
  });
});
