import { beforeAll, describe, expect, it } from 'vitest';
import { cifarDemoDefaults } from './config.js';
import { Encoder } from './encoder.js';
import { Rng } from './rng.js';
import { useCpuBackend } from './testing/setup-cpu.js';
import * as tf from './tf.js';

beforeAll(useCpuBackend);

describe('Encoder.freeze', () => {
  it('embeds as before, folds BN once, and refuses to train', async () => {
    const encoder = new Encoder({ ...cifarDemoDefaults, width: 4, dim: 8 }, new Rng(1));
    // Statistics away from the initial 0 / 1, so that folding them in matters.
    const rng = new Rng(2);
    for (const [name, v] of encoder.buffers) v.assign(tf.tensor1d(Array.from({ length: v.shape[0]! }, () => (name.endsWith('var') ? 0.5 + rng.uniform(0, 1) : rng.normal()))));
    const x = tf.randomNormal([3, 16, 16, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const before = await encoder.embed(x, { output: 'head', normalize: true });

    encoder.freeze();
    const first = await encoder.embed(x, { output: 'head', normalize: true });
    const tensorsAfterFirst = tf.memory().numTensors;
    const second = await encoder.embed(x, { output: 'head', normalize: true });
    expect(tf.memory().numTensors).toBe(tensorsAfterFirst); // the folded weights are kept, nothing more
    expect(Array.from(second.data)).toEqual(Array.from(first.data));
    for (let i = 0; i < before.data.length; i++) expect(first.data[i]).toBeCloseTo(before.data[i]!, 6);

    expect(() => encoder.forward(x, { training: true })).toThrow(/frozen/);
    encoder.dispose();
    x.dispose();
  });
});

describe('Encoder.forward in eval mode', () => {
  it('lets go of each activation once the next layer has read it', async () => {
    const encoder = new Encoder({ ...cifarDemoDefaults, width: 8, dim: 8 }, new Rng(4));
    encoder.freeze();
    const x = tf.randomNormal([4, 32, 32, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    tf.dispose(encoder.forward(x, { training: false })); // folds BN once, outside the measurement
    const before = tf.memory().numBytes;
    const info = await tf.profile(() => encoder.forward(x, { training: false }));
    const result = info.result as tf.Tensor;
    // Every activation the pass makes, against the most alive at once: a tidy that kept them all to the
    // end peaks at their sum.
    const made = info.kernels.reduce((sum, k) => sum + k.outputShapes.reduce((s, shape) => s + 4 * tf.util.sizeFromShape(shape ?? []), 0), 0);
    expect(info.peakBytes - before).toBeLessThan(0.3 * made);
    expect(tf.memory().numBytes - before).toBe(result.size * 4);
    result.dispose();
    encoder.dispose();
    x.dispose();
  });
});
