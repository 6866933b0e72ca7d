import { beforeAll, describe, expect, it } from 'vitest';
import { infoNceLogits, infoNceLoss } from './info-nce.js';
import { useCpuBackend } from './testing/setup-cpu.js';
import * as tf from './tf.js';

beforeAll(useCpuBackend);

describe('InfoNCE', () => {
  it('puts the positive first and divides by T; the loss is -log softmax[0]', () => {
    const q = tf.tensor2d([[1, 0]]);
    const k = tf.tensor2d([[0.6, 0.8]]);
    const queue = tf.tensor2d([[0, 1], [1, 0]]); // [dim 2, K 2]: keys (0,1) and (1,0)
    const logits = infoNceLogits(q, k, queue, 0.5);
    expect(Array.from(logits.dataSync())).toEqual([1.2, 0, 2].map(Math.fround));
    const expected = -Math.log(Math.exp(1.2) / (Math.exp(1.2) + Math.exp(0) + Math.exp(2)));
    expect(infoNceLoss(logits).dataSync()[0]).toBeCloseTo(expected, 5);
  });

  it('equals ln(K+1) when every logit is equal (the loss a model that learnt nothing sits at)', () => {
    const logits = tf.zeros([4, 17]) as tf.Tensor2D;
    expect(infoNceLoss(logits).dataSync()[0]).toBeCloseTo(Math.log(17), 5);
  });
});
