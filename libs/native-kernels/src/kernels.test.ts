import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BackendName } from '../../moco/src/config.js';
import { withBackend } from '../../moco/src/backend/select-backend.js';
import { maxRelativeError, readOn, seeded } from '../../moco/src/backend/test-support.js';
import {
  BATCH_NORM_TRAIN_GRAD_KERNEL as MOCO_BATCH_NORM_TRAIN_GRAD_KERNEL,
  BATCH_NORM_TRAIN_KERNEL as MOCO_BATCH_NORM_TRAIN_KERNEL,
  batchNorm,
  CONV_RESIDUAL_KERNEL as MOCO_CONV_RESIDUAL_KERNEL,
  foldedConv2d,
} from '../../moco/src/layers.js';
import { cifarDemoDefaults } from '../../moco/src/config.js';
import { Encoder } from '../../moco/src/encoder.js';
import { EMA_UPDATE_KERNEL as MOCO_EMA_UPDATE_KERNEL, Moco } from '../../moco/src/moco.js';
import { Rng } from '../../moco/src/rng.js';
import { Sgd, SGD_STEP_KERNEL as MOCO_SGD_STEP_KERNEL } from '../../moco/src/sgd.js';
import {
  BATCH_NORM_TRAIN_GRAD_KERNEL,
  BATCH_NORM_TRAIN_KERNEL,
  CONV_RESIDUAL_KERNEL,
  EMA_UPDATE_KERNEL,
  loadAddon,
  NATIVE_BACKEND,
  nativeThreads,
  nativeUnavailableReason,
  registerNativeBackend,
  SGD_STEP_KERNEL,
} from './index.js';

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

  // The encoder's convolutions: layers.conv2d passes a number (3x3 pad 1) or 'valid' (1x1, pad 0).
  it.each([
    { x: [4, 32, 32, 3], f: [3, 3, 3, 16], s: 1, pad: 1 as const },
    { x: [4, 16, 16, 16], f: [3, 3, 16, 32], s: 2, pad: 1 as const },
    { x: [4, 16, 16, 16], f: [1, 1, 16, 32], s: 2, pad: 'valid' as const },
    { x: [3, 9, 7, 5], f: [3, 3, 5, 6], s: 1, pad: 'same' as const },
    { x: [3, 9, 7, 8], f: [3, 3, 8, 8], s: 2, pad: 'same' as const },
  ] as Array<{ x: [number, number, number, number]; f: [number, number, number, number]; s: number; pad: 'same' | 'valid' | number }>)(
    'fused conv2d (bias, relu/linear) %o',
    async ({ x, f, s, pad }) => {
      const xs = seeded(tf.util.sizeFromShape(x), 11);
      const fs = seeded(tf.util.sizeFromShape(f), 12);
      const bs = seeded(f[3], 13);
      const errors = await compare(`fused conv x${x} f${f} s${s} pad ${pad}`, () => {
        const xt = tf.tensor4d(xs, x);
        const ft = tf.tensor4d(fs, f);
        const b = tf.tensor1d(bs);
        const conv = (bias: tf.Tensor | undefined, activation: 'relu' | 'linear') => tf.fused.conv2d({ x: xt, filter: ft, strides: s, pad, bias, activation });
        return [
          conv(b, 'relu'), conv(b, 'linear'), conv(undefined, 'relu'), conv(undefined, 'linear'),
          tf.fused.conv2d({ x: xt, filter: ft, strides: s, pad, bias: b.reshape([1, 1, 1, f[3]]), activation: 'relu' }),
          tf.fused.conv2d({ x: xt, filter: ft, strides: s, pad, bias: tf.scalar(0.5), activation: 'relu' }), // broadcast bias: cpu fallback
          tf.fused.conv2d({ x: xt, filter: ft, strides: s, pad, bias: b, activation: 'elu' }), // unsupported: cpu fallback
        ];
      });
      for (const e of errors) expect(e).toBeLessThan(1e-5);
    },
  );

  it.each([
    { x: [4, 16, 16, 16], f: [3, 3, 16, 16], pad: 1 }, // a basic block's second convolution
    { x: [4, 8, 8, 16], f: [1, 1, 16, 32], pad: 0 }, // a bottleneck's last 1x1
  ] as const)('convolution + bias + residual (+ ReLU) in one kernel %o', async ({ x, f, pad }) => {
    const xs = seeded(tf.util.sizeFromShape([...x]), 7);
    const fs = seeded(tf.util.sizeFromShape([...f]), 8);
    const bs = seeded(f[3], 9);
    const rs = seeded(x[0] * x[1] * x[2] * f[3], 10);
    // On cpu foldedConv2d composes fused conv, add and ReLU; on native it runs CONV_RESIDUAL_KERNEL.
    expect(MOCO_CONV_RESIDUAL_KERNEL).toBe(CONV_RESIDUAL_KERNEL); // the name libs/moco calls it by
    expect(tf.getKernel(CONV_RESIDUAL_KERNEL, NATIVE_BACKEND)).toBeDefined();
    const errors = await compare(`conv+residual x${x} f${f} pad ${pad}`, () => {
      const conv = { filter: tf.tensor4d(fs, [...f]), bias: tf.tensor1d(bs) };
      const xt = tf.tensor4d(xs, [...x]);
      const residual = tf.tensor4d(rs, [x[0], x[1], x[2], f[3]]);
      return [foldedConv2d(xt, conv, 1, pad, true, residual), foldedConv2d(xt, conv, 1, pad, false, residual)];
    });
    for (const e of errors) expect(e).toBeLessThan(1e-5);
  });

  // On cpu batchNorm composes split BN, add and ReLU (and its gradient from the ops'); on native it is
  // BATCH_NORM_TRAIN_KERNEL forward and BATCH_NORM_TRAIN_GRAD_KERNEL backward.
  it.each([
    { shape: [8, 6, 6, 16], splits: 2, residual: true, relu: true }, // a basic block's second BN
    { shape: [8, 6, 6, 16], splits: 4, residual: false, relu: true },
    { shape: [6, 5, 3, 8], splits: 4, residual: false, relu: false }, // splits shrink to 3 (6 % 4 != 0)
    { shape: [64, 16, 16, 16], splits: 8, residual: true, relu: true }, // the OpenMP path
  ] as const)('training batch norm (+ residual, + ReLU) and its gradients in one kernel each %o', async ({ shape, splits, residual, relu }) => {
    expect([MOCO_BATCH_NORM_TRAIN_KERNEL, MOCO_BATCH_NORM_TRAIN_GRAD_KERNEL]).toEqual([BATCH_NORM_TRAIN_KERNEL, BATCH_NORM_TRAIN_GRAD_KERNEL]);
    expect(tf.getKernel(BATCH_NORM_TRAIN_KERNEL, NATIVE_BACKEND)).toBeDefined();
    const size = tf.util.sizeFromShape([...shape]);
    const c = shape[3];
    const [xs, rs, dys, gs, bs] = [seeded(size, 31), seeded(size, 32), seeded(size, 33), seeded(c, 34), seeded(c, 35)];
    const errors = await compare(`batch norm ${shape} splits ${splits} residual ${residual} relu ${relu}`, () => {
      const x = tf.tensor4d(xs, [...shape]).mul<tf.Tensor4D>(3).add<tf.Tensor4D>(1); // not already normalised
      const res = tf.tensor4d(rs, [...shape]);
      const dy = tf.tensor4d(dys, [...shape]);
      const gamma = tf.tensor1d(gs);
      const beta = tf.tensor1d(bs);
      const runningMean = tf.variable(tf.zeros([c]), false);
      const runningVar = tf.variable(tf.ones([c]), false);
      const mode = { splits, momentum: 0.1, eps: 1e-5, updateStats: true };
      const f = (xv: tf.Tensor, g: tf.Tensor, b: tf.Tensor, r?: tf.Tensor) =>
        batchNorm(xv as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, runningMean, runningVar, mode, {
          residual: r as tf.Tensor4D | undefined,
          relu,
        }).mul(dy).sum();
      const { value, grads } = tf.valueAndGrads(f)(residual ? [x, gamma, beta, res] : [x, gamma, beta]);
      const y = batchNorm(x, gamma, beta, runningMean, runningVar, mode, { residual: residual ? res : undefined, relu });
      const out = [value, y, grads[0]!, grads[1]!, grads[2]!, runningMean.clone(), runningVar.clone()];
      if (residual) out.push(grads[3]!);
      runningMean.dispose();
      runningVar.dispose();
      return out;
    });
    for (const e of errors) expect(e).toBeLessThan(1e-4);
  });

  it('SGD with momentum and weight decay, and the momentum update, in one pass per parameter', async () => {
    expect([MOCO_SGD_STEP_KERNEL, MOCO_EMA_UPDATE_KERNEL]).toEqual([SGD_STEP_KERNEL, EMA_UPDATE_KERNEL]);
    const n = 200_000; // past the OpenMP threshold
    const [ps, g1, g2, ks] = [seeded(n, 41), seeded(n, 42), seeded(n, 43), seeded(n, 44)];
    const errors = await compare('sgd + momentum update', () => {
      const p = tf.variable(tf.tensor1d(ps), true, `sgd-test-${tf.getBackend()}`);
      const params = new Map([['w', p]]);
      const sgd = new Sgd(0.9, 5e-4);
      sgd.step(params, new Map([['w', tf.tensor1d(g1)]]), 0.06); // first step: the buffer starts as the gradient
      sgd.step(params, new Map([['w', tf.tensor1d(g2)]]), 0.03);
      const k = tf.tensor1d(ks);
      const ema = tf.getKernel(EMA_UPDATE_KERNEL, tf.getBackend())
        ? (tf.engine().runKernel(EMA_UPDATE_KERNEL, { k, q: p }, { m: 0.99 }) as tf.Tensor)
        : k.mul(0.99).add(p.mul(1 - 0.99));
      const out = [p.clone(), sgd.slots.get('w')!.clone(), ema];
      sgd.dispose();
      p.dispose();
      return out;
    });
    for (const e of errors) expect(e).toBeLessThan(1e-6);
  });

  // conv2dFused keeps each filter array's reordered copy: the same filter again, and another filter of the
  // same shape, must each give their own results.
  it('fused conv2d reorders a filter once and never serves it for another filter', async () => {
    const [x, f1, f2] = [seeded(2 * 8 * 8 * 16, 51), seeded(3 * 3 * 16 * 16, 52), seeded(3 * 3 * 16 * 16, 53)];
    const errors = await compare('fused conv, filters reused', () => {
      const xs = tf.tensor4d(x, [2, 8, 8, 16]);
      const [a, b] = [tf.tensor4d(f1, [3, 3, 16, 16]), tf.tensor4d(f2, [3, 3, 16, 16])];
      const conv = (filter: tf.Tensor4D) => tf.fused.conv2d({ x: xs, filter, strides: 1, pad: 1, activation: 'relu' });
      return [conv(a), conv(b), conv(a), conv(b)];
    });
    for (const e of errors) expect(e).toBeLessThan(1e-5);
    const got = await readOn(NATIVE_BACKEND as BackendName, () => {
      const filter = tf.tensor4d(f1, [3, 3, 16, 16]);
      const y = tf.fused.conv2d({ x: tf.tensor4d(x, [2, 8, 8, 16]), filter, strides: 1, pad: 1 });
      expect(Object.keys(filter.dataSync()).length).toBe(filter.size); // the kept copy is not enumerable
      return [y];
    });
    expect(got[0]!.values.length).toBe(2 * 8 * 8 * 16);
  });

  it('large 3x3 inference convolutions run Winograd where the CPU has it, with bias, residual and ReLU; one filter serves both layouts from its packed copies', async () => {
    const hasAvx512 = readFileSync('/proc/cpuinfo', 'utf8').includes(' avx512f');
    const before = loadAddon()!.info().winogradPrimitives;
    // 8 x 20 x 20 output pixels x 64 x 64 x 9: 1.2e8 multiply-adds, over winogradPays' line; one image is under it.
    const [xs, fs, bs, rs] = [seeded(8 * 20 * 20 * 64, 61), seeded(3 * 3 * 64 * 64, 62).map((v) => v * 0.1), seeded(64, 63), seeded(8 * 20 * 20 * 64, 64)];
    const errors = await compare('winograd-sized fused convs', () => {
      const filter = tf.tensor4d(fs, [3, 3, 64, 64]);
      const bias = tf.tensor1d(bs);
      const x = tf.tensor4d(xs, [8, 20, 20, 64]);
      const residual = tf.tensor4d(rs, [8, 20, 20, 64]);
      return [
        tf.fused.conv2d({ x, filter, bias, strides: 1, pad: 1, activation: 'relu' }), // Winograd
        foldedConv2d(x, { filter, bias }, 1, 1, true, residual),
        tf.fused.conv2d({ x: x.slice([0, 0, 0, 0], [1, 20, 20, 64]), filter, bias, strides: 1, pad: 1 }), // direct
        tf.fused.conv2d({ x, filter, bias, strides: 1, pad: 1 }), // the first layout again, from the filter's copies
      ];
    });
    for (const e of errors) expect(e).toBeLessThan(2e-5);
    expect(loadAddon()!.info().winogradPrimitives - before).toBe(hasAvx512 ? 3 : 0);
  });

  it('fused conv2d matches the unfused ops, with ReLU zeroing what it should', async () => {
    const cached = loadAddon()!.info().cachedPrimitives;
    const got = await readOn(NATIVE_BACKEND as BackendName, () => {
      const x = tf.tensor4d(seeded(2 * 8 * 8 * 4, 14), [2, 8, 8, 4]);
      const w = tf.tensor4d(seeded(3 * 3 * 4 * 8, 15), [3, 3, 4, 8]);
      const b = tf.tensor1d(seeded(8, 16));
      return [tf.fused.conv2d({ x, filter: w, strides: 1, pad: 1, bias: b, activation: 'relu' }), tf.conv2d(x, w, 1, 1).add(b).relu()];
    });
    expect(maxRelativeError(got[0]!.values, got[1]!.values)).toBeLessThan(1e-6);
    expect(Array.from(got[0]!.values).some((v) => v === 0)).toBe(true);
    expect(loadAddon()!.info().cachedPrimitives).toBeGreaterThan(cached); // ran natively, not the cpu fallback
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
    // Large enough for the OpenMP path (>= 131072 output elements).
    [[32, 16, 16, 16], [16]],
    [[32, 16, 16, 16], [32, 1, 1, 16]],
    [[1], [140000]],
    [[3, 1, 16000], [3, 3, 1]],
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
      return [x.relu(), x.step(0.3), x.square(), x.abs().add(0.1).rsqrt(), x.neg(), x.abs().sqrt(), x.mul(10).exp()];
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

  it('gather', async () => {
    const errors = await compare('gather', () => {
      const x = tf.tensor(seeded(6 * 4 * 3 * 20, 21), [6, 4, 3, 20]);
      const perm = tf.tensor1d([5, 0, 3, 3, 1], 'int32');
      return [
        tf.gather(x, perm), tf.gather(x, tf.tensor1d([2, 0, 1], 'int32'), 1), tf.gather(x, tf.tensor2d([[1, 0], [2, 2]], [2, 2], 'int32'), 2),
        tf.gather(x, tf.tensor1d([19, 0, 7], 'int32'), 3), tf.gather(tf.tensor1d([1, 2, 3], 'int32'), tf.tensor1d([2, 2, 0], 'int32')).cast('float32'),
      ];
    });
    for (const e of errors) expect(e).toBe(0);
    await expect(readOn(NATIVE_BACKEND as BackendName, () => [tf.gather(tf.ones([3, 2]), tf.tensor1d([3], 'int32'))])).rejects.toThrow(/index value 3/);
  });

  it('concat, 2-D transpose, max and argMax over the last axis (and the cases left to the cpu kernels)', async () => {
    const errors = await compare('concat/transpose/max/argMax', () => {
      const a = tf.tensor(seeded(6 * 5, 61), [6, 5]);
      const b = tf.tensor(seeded(6 * 3, 62), [6, 3]);
      const c = tf.tensor(seeded(2 * 6 * 5, 63), [2, 6, 5]);
      const nan = tf.tensor2d([[1, NaN, 3], [NaN, 2, 1], [4, 4, 0]]);
      return [
        tf.concat([a, b], 1), tf.concat([a, a], 0), tf.concat([c, c], 1), tf.concat([a, tf.zeros([6, 0]), b], -1), tf.concat([a.cast('int32'), a.cast('int32')], 1).cast('float32'),
        a.transpose(), c.transpose([1, 0, 2]), c.transpose(),
        a.max(1), a.max(-1, true), c.max(2), c.max(1), a.max(),
        a.argMax(1).cast('float32'), c.argMax(-1).cast('float32'), c.argMax(1).cast('float32'), nan.argMax(1).cast('float32'),
      ];
    });
    for (const e of errors) expect(e).toBe(0);
    const [max] = await readOn(NATIVE_BACKEND as BackendName, () => [tf.tensor2d([[1, NaN, 3], [NaN, 2, 1], [4, 4, 0]]).max(1)]);
    expect(Array.from(max!.values)).toEqual([NaN, NaN, 4]); // a NaN wins, as on cpu
  });

  it('large reductions and unary ops (the OpenMP paths)', async () => {
    const errors = await compare('large reduce/unary', () => {
      const x = tf.tensor(seeded(64 * 16 * 16 * 16, 10), [64, 16, 16, 16]);
      return [
        x.mean([0, 1, 2]), x.sum([0, 1, 2], true), x.sum(), x.mean(3), x.sum([1, 2, 3]), x.sum([2, 3]), x.sum([0, 2]),
        x.relu(), x.square(), x.abs().add(0.1).rsqrt(), x.step(0.5), x.exp(),
        tf.tensor(seeded(140000 * 2, 17), [2, 140000]).sum(0), tf.tensor(seeded(3 * 140000, 18), [140000, 3]).mean(0),
        tf.tensor(seeded(2 * 140000, 22), [2, 140000]).sum(1), tf.tensor(seeded(140000, 23), [140000]).sum(),
      ];
    });
    for (const e of errors) expect(e).toBeLessThan(1e-6);
  });

  it('gives the same bits with 1 thread and with 2', async () => {
    const addon = loadAddon()!;
    const run = async (threads: number) => {
      addon.setNumThreads(threads);
      try {
        return await readOn(NATIVE_BACKEND as BackendName, () => {
          const x = tf.tensor(seeded(64 * 16 * 16 * 32, 19), [64, 16, 16, 32]);
          const g = tf.tensor(seeded(32, 20), [32]);
          return [x.mean([0, 1, 2]), x.sub(x.mean([0, 1, 2])).square().mean([0, 1, 2]), x.mul(g).add(g).relu(), x.sum(), x.sum(3)];
        });
      } finally {
        addon.setNumThreads(nativeThreads());
      }
    };
    const [one, two] = [await run(1), await run(2)];
    two.forEach((t, i) => expect(Array.from(t.values)).toEqual(Array.from(one[i]!.values)));
  });

  describe('a ResNet backbone as one native plan (RESNET_FEATURES_KERNEL)', () => {
    const plans = () => loadAddon()!.info().resnetPlans;

    it.each([
      { arch: 'resnet18', stem: 'cifar', width: 16, size: 32, batch: 3 },
      { arch: 'resnet18', stem: 'cifar', width: 16, size: 32, batch: 1 },
      { arch: 'resnet50', stem: 'imagenet', width: 8, size: 32, batch: 2 }, // max pool, bottlenecks
    ] as const)('matches the cpu backend layer by layer: %o', async ({ batch, size, ...model }) => {
      const encoder = await withBackend('cpu', () => {
        const e = new Encoder({ ...cifarDemoDefaults, ...model }, new Rng(3));
        // Running statistics off their initial 0 and 1, so folding BN into the convolutions matters.
        const rng = new Rng(4);
        for (const [name, v] of e.buffers) {
          const values = Float32Array.from({ length: v.size }, () => (name.endsWith('running_var') ? rng.uniform(0.5, 1.5) : 0.2 * rng.normal()));
          v.assign(tf.tensor(values, v.shape));
        }
        return e;
      });
      const x = seeded(batch * size * size * 3, 5);
      const before = plans().plans;
      const errors = await compare(`${model.arch} width ${model.width} batch ${batch}`, () => {
        const images = tf.tensor4d(x, [batch, size, size, 3]);
        return [encoder.forward(images, { training: false, output: 'backbone' }), encoder.forward(images, { training: false, output: 'head' })];
      });
      for (const e of errors) expect(e).toBeLessThan(2e-5);
      expect(plans().plans).toBe(before + 1); // compiled once (the head pass reused it), so it ran natively
      encoder.dispose();
    });

    // Four convolutions at 8 x 20 x 20 x 64 (Winograd-sized where the CPU has it), then a 1x1 stride-2 one
    // to 32 channels: a residual that is the caller's input (copied, never overwritten), one summed in
    // place into its own buffer, sources in another layout than their convolution wants.
    const [n, hw, c] = [8, 20, 64];
    const x = seeded(n * hw * hw * c, 71);
    const filters = [72, 73, 74].map((seed) => seeded(3 * 3 * c * c, seed).map((v) => v * 0.05));
    filters.push(seeded(c * 32, 75).map((v) => v * 0.2));
    const biases = [76, 77, 78, 79].map((seed, i) => seeded(i === 3 ? 32 : c, seed));
    const shapes = [[3, 3, c, c], [3, 3, c, c], [3, 3, c, c], [1, 1, c, 32]];
    // [kind, src, residual, stride, pad, relu]
    const ops = [
      [0, 0, -1, 1, 1, 1],
      [0, 1, 0, 1, 1, 1], // residual: the input
      [0, 2, 1, 1, 1, 0], // residual: value 1, read for the last time here
      [0, 3, -1, 2, 0, 1],
    ].flat();

    it('sums residuals in place or from a copy, and leaves the input as it was', async () => {
      const [want] = await readOn('cpu', () => {
        const conv = (v: tf.Tensor4D, i: number, stride: number, pad: number) =>
          tf.conv2d(v, tf.tensor4d(filters[i]!, shapes[i] as [number, number, number, number]), stride, pad === 0 ? 'valid' : pad).add(tf.tensor1d(biases[i]!)) as tf.Tensor4D;
        const v0 = tf.tensor4d(x, [n, hw, hw, c]);
        const v1 = conv(v0, 0, 1, 1).relu() as tf.Tensor4D;
        const v2 = conv(v1, 1, 1, 1).add(v0).relu() as tf.Tensor4D;
        const v3 = conv(v2, 2, 1, 1).add(v1) as tf.Tensor4D;
        return [conv(v3, 3, 2, 0).relu().mean([1, 2])];
      });
      const input = Float32Array.from(x);
      const addon = loadAddon()!;
      const winograd = plans().winogradConvs;
      const weights = filters.flatMap((f, i) => [Float32Array.from(f), biases[i]!]);
      const got = addon.resnetFeatures(input, [n, hw, hw, c], ops, weights, shapes);
      expect(got.length).toBe(n * 32);
      expect(maxRelativeError(got, want!.values)).toBeLessThan(2e-5);
      expect(input).toEqual(x);
      const hasAvx512 = readFileSync('/proc/cpuinfo', 'utf8').includes(' avx512f');
      expect(plans().winogradConvs - winograd).toBe(hasAvx512 ? 3 : 0);
      // Again from the compiled plan, with the packed filters and the scratch buffers it left behind.
      expect(addon.resnetFeatures(input, [n, hw, hw, c], ops, weights, shapes)).toEqual(got);
    });

    it('runs wide convolutions at a small batch in chunks of the thread count, with the rest after', async () => {
      // 3 images of 8 x 8 x 256: 1.1e8 multiply-adds per convolution (Winograd's line), oneDNN's F(2x2, 3x3)
      // takes at most as many images as threads (on 2 threads: a chunk of 2 and the rest, 1).
      const [b, side, w] = [3, 8, 256];
      const input = seeded(b * side * side * w, 81);
      const [f0, f1] = [82, 83].map((seed) => seeded(3 * 3 * w * w, seed).map((v) => v * 0.03));
      const [b0, b1] = [84, 85].map((seed) => seeded(w, seed));
      const wideShapes = [[3, 3, w, w], [3, 3, w, w]];
      const [want] = await readOn('cpu', () => {
        const v0 = tf.tensor4d(input, [b, side, side, w]);
        const v1 = tf.conv2d(v0, tf.tensor4d(f0!, [3, 3, w, w]), 1, 1).add(tf.tensor1d(b0!)).relu() as tf.Tensor4D;
        return [tf.conv2d(v1, tf.tensor4d(f1!, [3, 3, w, w]), 1, 1).add(tf.tensor1d(b1!)).add(v0).relu().mean([1, 2])];
      });
      const before = plans();
      const wideOps = [0, 0, -1, 1, 1, 1, 0, 1, 0, 1, 1, 1];
      const got = loadAddon()!.resnetFeatures(input, [b, side, side, w], wideOps, [f0!, b0!, f1!, b1!], wideShapes);
      expect(maxRelativeError(got, want!.values)).toBeLessThan(2e-5);
      const hasAvx512 = readFileSync('/proc/cpuinfo', 'utf8').includes(' avx512f');
      expect(plans().chunkedConvs - before.chunkedConvs).toBe(hasAvx512 && loadAddon()!.info().threads >= 2 ? 2 : 0);
    });

    it('refuses a malformed plan with a clear error', () => {
      const addon = loadAddon()!;
      const weights = filters.flatMap((f, i) => [f, biases[i]!]);
      const run = (o: number[], w = weights, s = shapes) => () => addon.resnetFeatures(x, [n, hw, hw, c], o, w, s);
      expect(run(ops.slice(0, 5))).toThrow(/6 numbers per op/);
      expect(run(ops, weights.slice(0, 6))).toThrow(/a filter and a bias per convolution/);
      const edit = (at: number, value: number) => ops.map((v, i) => (i === at ? value : v));
      expect(run(edit(2, 3))).toThrow(/reads a value not yet made/); // op 0's residual: value 3, made later
      expect(run(edit(1, -1))).toThrow(/op 0 has no source/);
      expect(run(edit(3, 0))).toThrow(/stride must be 1 or more/);
      expect(run(edit(6, 1))).toThrow(/a max pool takes no residual/); // op 1 as a max pool with a residual
      const swapped = [shapes[3]!, shapes[1]!, shapes[2]!, shapes[0]!];
      expect(run(ops, [weights[6]!, weights[7]!, ...weights.slice(2, 6), weights[0]!, weights[1]!], swapped)).toThrow(/filter takes 64 channels, its input has 32|channels/);
    });
  });

  describe('kernel outputs in the arena', () => {
    const arena = () => loadAddon()!.info().arena;
    // 64 x 32 x 32 x 8 floats: 2 MiB, well above the size from which outputs go to the arena.
    const shape: [number, number, number, number] = [64, 32, 32, 8];
    const input = (seed: number) => tf.tensor4d(seeded(tf.util.sizeFromShape(shape), seed), shape);

    it('hands a disposed output\'s block to the next output instead of growing', async () => {
      await withBackend(NATIVE_BACKEND as BackendName, () => {
        const [a, b] = [input(31), input(32)];
        const before = arena();
        const sum = a.add(b);
        expect(arena().usedBytes - before.usedBytes).toBeGreaterThanOrEqual(sum.size * 4);
        sum.dispose();
        expect(arena().usedBytes).toBe(before.usedBytes);
        const reserved = arena().reservedBytes;
        for (let i = 0; i < 20; i++) tf.tidy(() => a.add(b).mul(a).relu().sum());
        expect(arena().reservedBytes).toBe(reserved);
        expect(arena().usedBytes).toBe(before.usedBytes);
        tf.dispose([a, b]);
      });
    });

    it('values read out of a tensor stay as they were after it is disposed and its block reused', async () => {
      await withBackend(NATIVE_BACKEND as BackendName, async () => {
        const [a, b] = [input(33), input(34)];
        const sum = a.add(b);
        const read = sum.dataSync();
        const readAsync = await sum.data();
        const want = Float32Array.from(read);
        sum.dispose();
        const other = a.sub(b); // takes the block sum had
        expect(Array.from(read.subarray(0, 1000))).toEqual(Array.from(want.subarray(0, 1000)));
        expect(read).toEqual(want);
        expect(readAsync).toEqual(want);
        tf.dispose([a, b, other]);
      });
    });

    it('a view of part of an output (the cpu kernels\' subarrays) keeps the block until it is disposed too', async () => {
      await withBackend(NATIVE_BACKEND as BackendName, () => {
        const [a, b] = [input(35), input(36)];
        const before = arena().usedBytes;
        const sum = a.add(b);
        const want = Float32Array.from(sum.dataSync());
        // The cpu backend's Unpack slices its input with TypedArray.subarray: no copy.
        const [first, ...rows] = tf.unstack(sum);
        tf.dispose([sum, first!]); // the row that starts where the block does
        const others = [a.sub(b), a.mul(b), b.sub(a)]; // would take sum's block if the other rows did not hold it
        const per = want.length / shape[0];
        rows.forEach((r, i) => expect(r.dataSync()).toEqual(want.subarray((i + 1) * per, (i + 2) * per)));
        tf.dispose([...rows, ...others]);
        expect(arena().usedBytes).toBe(before);
        tf.dispose([a, b]);
      });
    });

    it('a MoCo training step gives back every block it takes', async () => {
      await withBackend(NATIVE_BACKEND as BackendName, () => {
        // Width 8, batch 16: 512 KiB activations, every BN variant (ReLU alone, residual and ReLU, neither).
        const moco = new Moco({ ...cifarDemoDefaults, width: 8, K: 256, symmetric: false }, new Rng(0));
        const rng = new Rng(1);
        const [xq, xk] = [37, 38].map((seed) => tf.tensor4d(seeded(16 * 32 * 32 * 3, seed), [16, 32, 32, 3]));
        moco.step(xq as tf.Tensor4D, xk as tf.Tensor4D, 0.06, rng); // momentum buffers, queue pointer
        const [used, live] = [arena().usedBytes, tf.memory().numBytes];
        moco.step(xq as tf.Tensor4D, xk as tf.Tensor4D, 0.06, rng);
        expect(tf.memory().numBytes).toBe(live);
        expect(arena().usedBytes).toBe(used);
        moco.dispose();
        tf.dispose([xq!, xk!]);
      });
    });
  });
});
