import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '../tf.js';
import type { BackendName } from '../config.js';
import { initBackend, withBackend } from './select-backend.js';
import { maxRelativeError, readOn, seeded } from './test-support.js';

const PARAM_SHAPES: Record<string, number[]> = {
  stem: [7, 7, 3, 8], // 7x7 stride 2 pad 3
  stemGamma: [8],
  stemBeta: [8],
  conv1: [3, 3, 8, 16], // 3x3 stride 2 pad 1
  gamma1: [16],
  beta1: [16],
  conv2: [3, 3, 16, 16], // 3x3 stride 1 pad 1
  gamma2: [16],
  beta2: [16],
  down: [1, 1, 8, 16], // 1x1 stride 2
  proj: [1, 1, 16, 16], // 1x1 stride 1
  fc: [16, 8],
};
const NAMES = Object.keys(PARAM_SHAPES);
type Params = Record<string, tf.Tensor>;

function initialParams(): Params {
  return Object.fromEntries(
    NAMES.map((name, i) => {
      const shape = PARAM_SHAPES[name]!;
      const values = seeded(tf.util.sizeFromShape(shape), 100 + i);
      // BN scales around 1, conv / fc weights small enough to keep activations moderate.
      const scaled = name.startsWith('gamma') || name === 'stemGamma' ? values.map((v) => 1 + 0.2 * v) : values.map((v) => 0.5 * v);
      return [name, tf.tensor(scaled, shape)];
    }),
  );
}

function batchNorm(h: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor4D {
  const { mean, variance } = tf.moments(h, [0, 1, 2]);
  return tf.add(tf.mul(tf.mul(tf.sub(h, mean), tf.rsqrt(tf.add(variance, 1e-5))), gamma), beta);
}

/**
 * A tiny MoCo-like step: ResNet stem and one downsampling residual block, global mean, projection,
 * L2 norm, contrastive logits against a queue and a shuffled copy (gather), cross-entropy twice
 * (logSoftmax, and by hand with max / exp / log). Between them these use every op the real step does.
 */
function mocoLikeLoss(p: Params, x: tf.Tensor4D, queue: tf.Tensor2D, perm: tf.Tensor1D): tf.Scalar {
  const conv = (h: tf.Tensor4D, name: string, stride: number, pad: number) => tf.conv2d(h, p[name] as tf.Tensor4D, stride, pad);
  let h = tf.relu(batchNorm(conv(x, 'stem', 2, 3), p.stemGamma!, p.stemBeta!));
  h = tf.maxPool(h, 3, 2, 1);
  const branch = batchNorm(conv(tf.relu(batchNorm(conv(h, 'conv1', 2, 1), p.gamma1!, p.beta1!)), 'conv2', 1, 1), p.gamma2!, p.beta2!);
  h = conv(tf.relu(tf.add(branch, conv(h, 'down', 2, 0))) as tf.Tensor4D, 'proj', 1, 0);
  const features = tf.reshape(tf.mean(h, [1, 2]), [x.shape[0], -1]) as tf.Tensor2D;
  const z = tf.matMul(features, p.fc as tf.Tensor2D);
  const q = tf.div(z, tf.sqrt(tf.maximum(tf.sum(tf.square(z), 1, true), 1e-12))) as tf.Tensor2D;
  const k = tf.gather(q, perm);
  const lPos = tf.sum(tf.mul(q, k), 1, true);
  const lNeg = tf.matMul(tf.transpose(q), queue, true, false);
  const logits = tf.div(tf.concat([lPos, lNeg], 1), 0.2) as tf.Tensor2D;
  const crossEntropy = tf.neg(tf.mean(tf.slice(tf.logSoftmax(logits), [0, 0], [-1, 1])));
  const max = tf.max(logits, 1, true);
  const logSumExp = tf.add(tf.log(tf.sum(tf.exp(tf.sub(logits, max)), 1, true)), max);
  const byHand = tf.mean(tf.sub(logSumExp, tf.slice(logits, [0, 0], [-1, 1])));
  const gram = tf.add(tf.mean(tf.square(tf.matMul(features, features, true, false))), tf.mean(tf.matMul(features, features, false, true)));
  return tf.add(tf.add(crossEntropy, byHand), tf.mul(gram, 0.01)) as tf.Scalar;
}

function stepInputs(): { x: tf.Tensor4D; queue: tf.Tensor2D; perm: tf.Tensor1D } {
  return {
    x: tf.tensor4d(seeded(4 * 16 * 16 * 3, 7), [4, 16, 16, 3]),
    queue: tf.tensor2d(seeded(8 * 6, 8), [8, 6]),
    perm: tf.tensor1d([2, 0, 3, 1], 'int32'),
  };
}

/** Runs `fn` with the parameters as fresh variables, disposed afterwards. */
async function withVariables<T>(fn: (vars: Record<string, tf.Variable>) => T | Promise<T>): Promise<T> {
  const initial = initialParams();
  const vars = Object.fromEntries(NAMES.map((n) => [n, tf.variable(initial[n]!)]));
  tf.dispose(Object.values(initial));
  try {
    return await fn(vars);
  } finally {
    tf.dispose(Object.values(vars));
  }
}

/** [loss, ...gradients in NAMES order] by tf.variableGrads. */
function trainingStep(vars: Record<string, tf.Variable>): tf.Tensor[] {
  const { x, queue, perm } = stepInputs();
  const { value, grads } = tf.variableGrads(() => mocoLikeLoss(vars, x, queue, perm), Object.values(vars));
  return [value, ...NAMES.map((n) => grads[vars[n]!.name]!)];
}

function variableGradsOn(name: BackendName): Promise<Float32Array[]> {
  return withBackend(name, () =>
    withVariables((vars) => tf.tidy(() => trainingStep(vars).map((t) => Float32Array.from(t.dataSync())))),
  );
}

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', log: () => {} });
});

describe('gradients of a MoCo-like ResNet step', () => {
  it('tf.variableGrads on wasm equals cpu within 1e-4 relative, for the loss and every parameter', async () => {
    const wasm = await variableGradsOn('wasm');
    const cpu = await variableGradsOn('cpu');
    expect(Number.isFinite(cpu[0]![0])).toBe(true);
    ['loss', ...NAMES].forEach((name, i) => {
      expect(maxRelativeError(wasm[i]!, cpu[i]!), name).toBeLessThan(1e-4);
    });
  });

  it('tf.grads w.r.t. the input image and parameters equals cpu', async () => {
    const grads = () => {
      const params = initialParams();
      const { x, queue, perm } = stepInputs();
      const f = (image: tf.Tensor, ...weights: tf.Tensor[]) =>
        mocoLikeLoss(Object.fromEntries(NAMES.map((n, i) => [n, weights[i]!])), image as tf.Tensor4D, queue, perm);
      return tf.grads(f)([x, ...NAMES.map((n) => params[n]!)]);
    };
    const wasm = await readOn('wasm', grads);
    const cpu = await readOn('cpu', grads);
    expect(wasm.length).toBe(NAMES.length + 1);
    wasm.forEach((g, i) => expect(maxRelativeError(g.values, cpu[i]!.values), i === 0 ? 'image' : NAMES[i - 1]).toBeLessThan(1e-4));
  });

  it('runs only kernels that wasm has, Conv2DBackpropFilter and UnsortedSegmentSum included', async () => {
    const profile = await withBackend('cpu', () => withVariables((vars) => tf.profile(() => tf.dispose(trainingStep(vars)))));
    // Entries that are not kernels are the scopes of custom-gradient ops.
    const kernels = new Set(profile.kernels.map((k) => k.name).filter((name) => tf.getKernel(name, 'cpu') !== undefined));
    expect([...kernels].filter((name) => tf.getKernel(name, 'wasm') === undefined)).toEqual([]);
    expect(kernels).toContain(tf.Conv2DBackpropFilter);
    expect(kernels).toContain(tf.Conv2DBackpropInput);
    expect(kernels).toContain(tf.UnsortedSegmentSum);
    expect(kernels).toContain(tf.MaxPoolGrad);
  });

  it('leaves no tensors or wasm buffers behind', async () => {
    expect(tf.getBackend()).toBe('wasm');
    await variableGradsOn('wasm'); // warm-up: lazily created engine state is not a leak
    const before = [tf.memory().numTensors, tf.backend().numDataIds()];
    await variableGradsOn('wasm');
    expect([tf.memory().numTensors, tf.backend().numDataIds()]).toEqual(before);
  });
});
