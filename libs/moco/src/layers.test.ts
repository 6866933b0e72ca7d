import { beforeAll, describe, expect, it } from 'vitest';
import { batchNorm, conv2d, effectiveSplits, foldBn, foldedConv2d, l2Normalize } from './layers.js';
import { Rng } from './rng.js';
import { useCpuBackend } from './testing/setup-cpu.js';
import * as tf from './tf.js';

beforeAll(useCpuBackend);

const mode = { splits: 2, momentum: 0.1, eps: 1e-5, updateStats: true };

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

  it('shrinks the split count to a divisor of a short batch', () => {
    expect(effectiveSplits(512, 8)).toBe(8);
    expect(effectiveSplits(100, 8)).toBe(5);
    expect(effectiveSplits(7, 8)).toBe(7);
    expect(effectiveSplits(13, 8)).toBe(1);
  });
});

describe('foldedConv2d (BN with running statistics folded into the convolution)', () => {
  const stats = (mean: number[], variance: number[], gamma: number[], beta: number[]) => ({
    mean: tf.tensor1d(mean),
    variance: tf.tensor1d(variance),
    gamma: tf.tensor1d(gamma),
    beta: tf.tensor1d(beta),
    eps: 1e-5,
  });

  it('is gamma * (conv - mean) / sqrt(var + eps) + beta, then ReLU when asked', () => {
    // 1x1 convolution: one pixel 4, weight 2 -> conv 8; channels: mean 2 / var 4 / gamma 3 / beta 1 and mean 20 / var 1 / gamma 1 / beta 0.
    const x = tf.tensor4d([4], [1, 1, 1, 1]);
    const w = tf.tensor4d([2, 2], [1, 1, 1, 2]);
    const bn = stats([2, 20], [4, 1], [3, 1], [1, 0]);
    const expected = [(3 * 6) / Math.sqrt(4 + 1e-5) + 1, -12 / Math.sqrt(1 + 1e-5)];
    const linear = foldedConv2d(x, foldBn(w, bn), 1, 0, false).dataSync();
    expected.forEach((v, i) => expect(linear[i]).toBeCloseTo(v, 5));
    const relu = foldedConv2d(x, foldBn(w, bn), 1, 0, true).dataSync();
    expect(relu[0]).toBeCloseTo(expected[0]!, 5);
    expect(relu[1]).toBe(0);
  });

  it('equals convolution followed by eval-mode BN, with stride and padding', () => {
    const rng = new Rng(3);
    const x = tf.tensor4d(Array.from({ length: 2 * 6 * 6 * 3 }, () => rng.normal()), [2, 6, 6, 3]);
    const w = tf.tensor4d(Array.from({ length: 3 * 3 * 3 * 4 }, () => rng.normal()), [3, 3, 3, 4]);
    const bn = stats([0.5, -1, 0, 2], [0.25, 2, 1, 9], [1.5, 0.5, -1, 2], [0, 1, -2, 0.5]);
    const plain = conv2d(x, w, 2, 1).sub(bn.mean).div(bn.variance.add(bn.eps).sqrt()).mul(bn.gamma).add(bn.beta);
    const folded = foldedConv2d(x, foldBn(w, bn), 2, 1, false);
    expect(folded.shape).toEqual([2, 3, 3, 4]);
    expect(tf.max(tf.abs(folded.sub(plain))).dataSync()[0]).toBeLessThan(1e-5);
  });
});

describe('l2Normalize', () => {
  it('gives unit rows and leaves zero rows at zero', () => {
    const y = l2Normalize(tf.tensor2d([[3, 4], [0, 0]])).dataSync();
    expect(Array.from(y)).toEqual([0.6, 0.8, 0, 0].map(Math.fround));
  });
});
