import { beforeAll, describe, expect, it } from 'vitest';
import { Sgd } from './sgd.js';
import { useCpuBackend } from './testing/setup-cpu.js';
import * as tf from './tf.js';

beforeAll(useCpuBackend);

describe('Sgd (torch.optim.SGD semantics)', () => {
  it('adds weight decay to the gradient and accumulates momentum without lr scaling', () => {
    const p = tf.variable(tf.tensor1d([1, -2]));
    const sgd = new Sgd(0.9, 0.1);
    const params = new Map([['w', p]]);
    // step 1: g = [0.5, 0.5] + 0.1 * [1, -2] = [0.6, 0.3]; buf = g; p = p - 0.1 * buf
    sgd.step(params, new Map([['w', tf.tensor1d([0.5, 0.5])]]), 0.1);
    expect(Array.from(p.dataSync())).toEqual([1 - 0.06, -2 - 0.03].map(Math.fround));
    // step 2 with a different lr: g = [0, 0] + 0.1 * p; buf = 0.9 * buf + g; p -= 0.5 * buf
    const p1 = [0.94, -2.03];
    const buf = [0.9 * 0.6 + 0.1 * p1[0]!, 0.9 * 0.3 + 0.1 * p1[1]!];
    sgd.step(params, new Map([['w', tf.tensor1d([0, 0])]]), 0.5);
    const got = p.dataSync();
    expect(got[0]).toBeCloseTo(p1[0]! - 0.5 * buf[0]!, 6);
    expect(got[1]).toBeCloseTo(p1[1]! - 0.5 * buf[1]!, 6);
    sgd.dispose();
    p.dispose();
  });
});
