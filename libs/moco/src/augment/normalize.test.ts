import * as tf from '../tf.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCpuBackend } from '../testing/setup-cpu.js';
import { checkNormalization, normalize } from './normalize.js';

beforeAll(useCpuBackend);

describe('normalize', () => {
  it('subtracts the mean and divides by the std per channel', () => {
    const out = normalize(tf.tensor4d([0.5, 0.5, 0.5, 1, 0, 0.2], [1, 1, 2, 3]), [0.5, 0.25, 0], [0.5, 0.25, 2]);
    Array.from(out.dataSync()).forEach((v, i) => expect(v).toBeCloseTo([0, 1, 0.25, 1, -1, 0.1][i]!, 6));
  });

  it('rejects a mean/std per channel mismatch and non-positive stds', () => {
    expect(() => checkNormalization(3, [0.5], [0.5])).toThrow(/3 channels/);
    expect(() => checkNormalization(1, [0.5], [0])).toThrow(/positive/);
  });
});
