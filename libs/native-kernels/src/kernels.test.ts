import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BackendName } from '../../moco/src/backend/select-backend.js';
import { maxRelativeError, readOn, seeded } from '../../moco/src/backend/test-support.js';
import { NATIVE_BACKEND, nativeUnavailableReason, registerNativeBackend } from './index.js';

const reason = nativeUnavailableReason();
if (reason) console.warn(`skipping native kernel tests: ${reason}`);

async function compare(name: string, fn: () => tf.Tensor[]): Promise<number[]> {
  const want = await readOn('cpu', fn);
  const got = await readOn(NATIVE_BACKEND as BackendName, fn);
  const errors = got.map((g, i) => {
    expect(g.shape).toEqual(want[i]!.shape);
    return maxRelativeError(g.values, want[i]!.values);
  });
  console.log(`${name}: max relative error ${errors.map((e) => e.toExponential(1)).join(', ')}`);
  return errors;
}

const convCases: Array<{ x: [number, number, number, number]; f: [number, number, number, number]; s: number; pad: 'same' | 'valid' | number }> = [
  { x: [4, 32, 32, 3], f: [3, 3, 3, 16], s: 1, pad: 1 }, // CIFAR stem
  { x: [4, 16, 16, 16], f: [3, 3, 16, 16], s: 1, pad: 'same' },
  { x: [4, 16, 16, 16], f: [3, 3, 16, 32], s: 2, pad: 1 }, // strided 3x3
  { x: [4, 16, 16, 16], f: [1, 1, 16, 32], s: 2, pad: 'valid' }, // 1x1 stride-2 downsample
  { x: [3, 9, 7, 5], f: [3, 2, 5, 6], s: 2, pad: 'same' }, // odd sizes, asymmetric 'same' pads
  { x: [2, 8, 8, 4], f: [5, 5, 4, 3], s: 1, pad: 'valid' },
];

describe.skipIf(reason !== undefined)('native (oneDNN) kernels against the cpu backend', () => {
  beforeAll(() => {
    registerNativeBackend();
  });

  it.each(convCases)('conv2d and its gradients %o', async ({ x, f, s, pad }) => {
    const xs = seeded(tf.util.sizeFromShape(x), 1);
    const fs = seeded(tf.util.sizeFromShape(f), 2);
    const errors = await compare(`conv x${x} f${f} s${s} pad ${pad}`, () => {
      const xt = tf.tensor4d(xs, x);
      const ft = tf.tensor4d(fs, f);
      const y = tf.conv2d(xt, ft, s, pad);
      const dy = tf.tensor4d(seeded(y.size, 3), y.shape);
      const dx = tf.conv2dTranspose(dy, ft, x, s, pad); // Conv2DBackpropInput
      const dw = tf.grad((w: tf.Tensor) => tf.conv2d(xt, w as tf.Tensor4D, s, pad).mul(dy).sum())(ft); // Conv2DBackpropFilter
      const dxGrad = tf.grad((v: tf.Tensor) => tf.conv2d(v as tf.Tensor4D, ft, s, pad).mul(dy).sum())(xt);
      return [y, dx, dw, dxGrad];
    });
    for (const e of errors) expect(e).toBeLessThan(1e-5);
  });

  it.each([
    { a: [64, 128], b: [128, 32], ta: false, tb: false },
    { a: [128, 64], b: [128, 32], ta: true, tb: false },
    { a: [64, 128], b: [32, 128], ta: false, tb: true },
    { a: [128, 64], b: [32, 128], ta: true, tb: true },
    { a: [3, 5, 7], b: [3, 7, 2], ta: false, tb: false },
    { a: [3, 7, 5], b: [1, 2, 7], ta: true, tb: true }, // broadcast batch
    { a: [1, 16], b: [16, 4096], ta: false, tb: false },
  ])('matMul %o', async ({ a, b, ta, tb }) => {
    const errors = await compare(`matmul ${a}${ta ? 'T' : ''} x ${b}${tb ? 'T' : ''}`, () => [
      tf.matMul(tf.tensor(seeded(tf.util.sizeFromShape(a), 4), a), tf.tensor(seeded(tf.util.sizeFromShape(b), 5), b), ta, tb),
    ]);
    for (const e of errors) expect(e).toBeLessThan(1e-5);
  });

  it.each([
    [[4, 8, 8, 16], [16]],
    [[16, 8, 64, 16], [1, 8, 1, 16]],
    [[5, 3], [5, 3]],
    [[1], [7, 2]],
    [[3, 1, 5], [1, 4, 1]],
    [[2, 3], []],
  ])('binary ops %o %o', async (aShape, bShape) => {
    const errors = await compare(`binary ${aShape} ${bShape}`, () => {
      const a = tf.tensor(seeded(tf.util.sizeFromShape(aShape), 6), aShape);
      const b = tf.tensor(seeded(tf.util.sizeFromShape(bShape), 7), bShape).add(2);
      return [a.add(b), a.sub(b), a.mul(b), a.div(b), a.maximum(b), a.minimum(b), a.squaredDifference(b)];
    });
    for (const e of errors) expect(e).toBeLessThan(1e-6);
  });

  it('unary ops', async () => {
    const errors = await compare('unary', () => {
      const x = tf.tensor(seeded(1000, 8), [10, 100]);
      return [x.relu(), x.step(0.3), x.square(), x.abs().add(0.1).rsqrt(), x.neg(), x.abs().sqrt()];
    });
    for (const e of errors) expect(e).toBeLessThan(1e-6);
  });

  it('reductions, slices and splits', async () => {
    const errors = await compare('reduce/slice/split', () => {
      const x = tf.tensor(seeded(2 * 3 * 4 * 5, 9), [2, 3, 4, 5]);
      return [
        x.sum(), x.mean([1, 2]), x.sum(0, true), x.mean(3), x.sum([0, 2]), x.mean([-1, 1], true),
        x.slice([0, 1, 0, 0], [2, 2, 4, 5]), x.slice([1, 0, 1, 2], [1, 3, 2, 2]), x.slice([0, 0, 0, 1], [-1, -1, -1, 3]),
        ...tf.split(x, [1, 2], 1), ...tf.split(x, 5, 3), ...tf.split(x, 2, 0),
      ];
    });
    for (const e of errors) expect(e).toBeLessThan(1e-6);
  });
});
