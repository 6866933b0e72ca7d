import { beforeAll, describe, expect, it } from 'vitest';
import { batchNorm, effectiveSplits, l2Normalize } from './layers.js';
import { useCpuBackend } from './testing/setup-cpu.js';
import * as tf from './tf.js';

beforeAll(useCpuBackend);

const mode = { training: true, splits: 2, momentum: 0.1, eps: 1e-5, updateStats: true };

describe('batchNorm with split statistics', () => {
  it('normalises samples i % S together and moves running stats to the mean over splits', () => {
    // 4 samples, 1x1 pixels, 1 channel: splits {0, 2} -> values 1, 3 and {1, 3} -> values 10, 30.
    const x = tf.tensor4d([1, 10, 3, 30], [4, 1, 1, 1]);
    const rm = tf.variable(tf.zeros([1]));
    const rv = tf.variable(tf.ones([1]));
    const y = batchNorm(x, tf.ones([1]) as tf.Tensor1D, tf.zeros([1]) as tf.Tensor1D, rm, rv, mode);
    const e = 1 / Math.sqrt(1 + 1e-5);
    const e2 = 10 / Math.sqrt(100 + 1e-5);
    const got = y.dataSync();
    [-e, -e2, e, e2].forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
    // means 2 and 20 -> mean 11; unbiased variances 2 and 200 -> mean 101.
    expect(rm.dataSync()[0]).toBeCloseTo(0.1 * 11, 5);
    expect(rv.dataSync()[0]).toBeCloseTo(0.9 + 0.1 * 101, 4);
  });

  it('uses running statistics in evaluation mode', () => {
    const x = tf.tensor4d([4], [1, 1, 1, 1]);
    const rm = tf.variable(tf.tensor1d([2]));
    const rv = tf.variable(tf.tensor1d([4]));
    const y = batchNorm(x, tf.tensor1d([3]), tf.tensor1d([1]), rm, rv, { ...mode, training: false });
    expect(y.dataSync()[0]).toBeCloseTo((3 * 2) / Math.sqrt(4 + 1e-5) + 1, 5);
  });

  it('shrinks the split count to a divisor of a short batch', () => {
    expect(effectiveSplits(512, 8)).toBe(8);
    expect(effectiveSplits(100, 8)).toBe(5);
    expect(effectiveSplits(7, 8)).toBe(7);
    expect(effectiveSplits(13, 8)).toBe(1);
  });
});

describe('l2Normalize', () => {
  it('gives unit rows and leaves zero rows at zero', () => {
    const y = l2Normalize(tf.tensor2d([[3, 4], [0, 0]])).dataSync();
    expect(Array.from(y)).toEqual([0.6, 0.8, 0, 0].map(Math.fround));
  });
});
