import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '../tf.js';
import { initBackend } from './select-backend.js';
import { maxRelativeError, readOn, seeded } from './test-support.js';
import { registerWasmGradientKernels } from './wasm-gradient-kernels.js';

type Pad = tf.Conv2DAttrs['pad'];

interface ConvCase {
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  pad: Pad;
}

function outputShape(c: ConvCase): [number, number, number, number] | null {
  const { outHeight, outWidth } = tf.backend_util.computeConv2DInfo(
    [c.batch, c.height, c.width, c.inChannels],
    [c.kernel, c.kernel, c.inChannels, c.outChannels],
    c.stride,
    1,
    c.pad,
  );
  return outHeight > 0 && outWidth > 0 ? [c.batch, outHeight, outWidth, c.outChannels] : null;
}

/** The requested grid, sampled so every kernel x stride x pad meets several batches, sizes and channel counts. */
function gridCases(): ConvCase[] {
  const cases: ConvCase[] = [];
  const channels = [1, 3, 8];
  let i = 0;
  for (const kernel of [1, 3, 7]) {
    for (const stride of [1, 2]) {
      for (const pad of [0, 1, 3, 'same', 'valid'] as const) {
        for (let variant = 0; variant < 4; variant++, i++) {
          const c: ConvCase = {
            batch: i % 2 === 0 ? 1 : 4,
            height: 5 + ((i * 7) % 12),
            width: 5 + ((i * 5 + 3) % 12),
            inChannels: channels[i % 3]!,
            outChannels: channels[(i + variant + 1) % 3]!,
            kernel,
            stride,
            pad,
          };
          if (outputShape(c) !== null) cases.push(c);
        }
      }
    }
  }
  return cases;
}

/** Asymmetric explicit padding, and shapes large enough for the blocked transposes (batch, channels multiple of 16). */
const extraCases: ConvCase[] = [
  { batch: 2, height: 9, width: 8, inChannels: 3, outChannels: 4, kernel: 3, stride: 2, pad: [[0, 0], [1, 2], [2, 0], [0, 0]] },
  { batch: 3, height: 7, width: 10, inChannels: 2, outChannels: 5, kernel: 3, stride: 1, pad: [[0, 0], [0, 1], [2, 1], [0, 0]] },
  { batch: 1, height: 11, width: 6, inChannels: 4, outChannels: 2, kernel: 7, stride: 2, pad: [[0, 0], [3, 0], [0, 3], [0, 0]] },
  { batch: 16, height: 12, width: 12, inChannels: 16, outChannels: 8, kernel: 3, stride: 1, pad: 1 },
  { batch: 16, height: 12, width: 12, inChannels: 16, outChannels: 32, kernel: 3, stride: 2, pad: 1 },
  { batch: 32, height: 6, width: 6, inChannels: 8, outChannels: 16, kernel: 1, stride: 1, pad: 0 },
  { batch: 32, height: 8, width: 8, inChannels: 8, outChannels: 16, kernel: 1, stride: 2, pad: 0 },
];

function describeCase(c: ConvCase): string {
  return `${c.batch}x${c.height}x${c.width}x${c.inChannels}->${c.outChannels} k${c.kernel} s${c.stride} pad ${JSON.stringify(c.pad)}`;
}

function convInputs(c: ConvCase): { x: tf.Tensor; filter: tf.Tensor; dy: tf.Tensor } {
  const make = (shape: number[], seed: number) => tf.tensor(seeded(tf.util.sizeFromShape(shape), seed), shape);
  return {
    x: make([c.batch, c.height, c.width, c.inChannels], 1),
    filter: make([c.kernel, c.kernel, c.inChannels, c.outChannels], 2),
    dy: make(outputShape(c)!, 3),
  };
}

/** [dW, dx] of the case, through the registered kernels of the active backend. */
function convGradients(c: ConvCase, { x, filter, dy }: ReturnType<typeof convInputs>): tf.Tensor[] {
  const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', filterShape: filter.shape, inputShape: x.shape };
  const engine = tf.engine();
  return [
    engine.runKernel(tf.Conv2DBackpropFilter, { x, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor,
    engine.runKernel(tf.Conv2DBackpropInput, { dy, filter }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor,
  ];
}

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', log: () => {} });
});

describe('conv2d gradient kernels on wasm match the cpu backend', () => {
  it.each([...gridCases(), ...extraCases].map((c) => [describeCase(c), c] as const))('%s', async (_, c) => {
    const [dwWasm, dxWasm] = await readOn('wasm', () => convGradients(c, convInputs(c)));
    const [dwCpu, dxCpu] = await readOn('cpu', () => convGradients(c, convInputs(c)));
    expect(dwWasm!.shape).toEqual([c.kernel, c.kernel, c.inChannels, c.outChannels]);
    expect(dxWasm!.shape).toEqual([c.batch, c.height, c.width, c.inChannels]);
    expect(maxRelativeError(dwWasm!.values, dwCpu!.values)).toBeLessThan(1e-4);
    expect(maxRelativeError(dxWasm!.values, dxCpu!.values)).toBeLessThan(1e-4);
  });

  it('covers a meaningful grid', () => {
    expect(gridCases().length).toBeGreaterThan(100);
  });
});

describe('other kernels replaced or added on wasm', () => {
  it.each([
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[40, 48], [40, 24], true, false],
    [[2, 5, 7], [2, 3, 7], false, true],
  ] as const)('matMul %j x %j transposeA=%s transposeB=%s', async (aShape, bShape, transposeA, transposeB) => {
    const product = () => {
      const a = tf.tensor(seeded(tf.util.sizeFromShape([...aShape]), 4), [...aShape]);
      const b = tf.tensor(seeded(tf.util.sizeFromShape([...bShape]), 5), [...bShape]);
      return [tf.matMul(a, b, transposeA, transposeB)];
    };
    const [wasm] = await readOn('wasm', product);
    const [cpu] = await readOn('cpu', product);
    expect(wasm!.shape).toEqual(cpu!.shape);
    expect(maxRelativeError(wasm!.values, cpu!.values)).toBeLessThan(1e-5);
  });

  it('unsortedSegmentSum (the gradient of gather), with repeated and out-of-range ids', async () => {
    const sums = () => {
      const x = tf.tensor(seeded(5 * 3, 6), [5, 3]);
      return [tf.unsortedSegmentSum(x, tf.tensor1d([2, 0, 2, -1, 1], 'int32'), 4)];
    };
    const [wasm] = await readOn('wasm', sums);
    const [cpu] = await readOn('cpu', sums);
    expect(wasm!.shape).toEqual([4, 3]);
    expect(maxRelativeError(wasm!.values, cpu!.values)).toBeLessThan(1e-6);
  });

  it.each([
    [[2, 16, 16, 3], 3, 2, 1],
    [[2, 17, 15, 2], 3, 2, 1],
    [[2, 16, 16, 3], 3, 2, 'same'],
    [[2, 9, 9, 4], 3, 2, 'valid'],
    [[1, 8, 8, 2], 2, 2, 0],
  ] as const)('maxPool gradient %j k%s s%s pad %s, overlapping windows and ReLU ties', async (shape, k, stride, pad) => {
    const grads = () => {
      // relu makes ties (all-zero windows), where the gradient must go to one element only.
      const x = tf.tensor(seeded(tf.util.sizeFromShape([...shape]), 7), [...shape]).relu() as tf.Tensor4D;
      const pool = (a: tf.Tensor) => tf.maxPool(a as tf.Tensor4D, k, stride, pad);
      const dy = tf.tensor(seeded(pool(x).size, 8), pool(x).shape);
      return tf.grads(pool)([x], dy);
    };
    const [wasm] = await readOn('wasm', grads);
    const [cpu] = await readOn('cpu', grads);
    expect(maxRelativeError(wasm!.values, cpu!.values)).toBeLessThan(1e-6);
  });

  it('registering again changes nothing', () => {
    const before = [tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter, tf.BatchMatMul, tf.MaxPoolGrad].map((k) => tf.getKernel(k, 'wasm')!.kernelFunc);
    registerWasmGradientKernels();
    const after = [tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter, tf.BatchMatMul, tf.MaxPoolGrad].map((k) => tf.getKernel(k, 'wasm')!.kernelFunc);
    expect(after).toEqual(before);
  });
});

describe('no tensor or wasm memory leaks', () => {
  const cases: ConvCase[] = [
    { batch: 16, height: 9, width: 9, inChannels: 16, outChannels: 8, kernel: 3, stride: 2, pad: 'valid' },
    { batch: 16, height: 8, width: 8, inChannels: 8, outChannels: 16, kernel: 1, stride: 1, pad: 0 },
  ];

  function counts(): [number, number] {
    return [tf.memory().numTensors, tf.backend().numDataIds()];
  }

  it.each(cases.map((c) => [describeCase(c), c] as const))('%s, inside tidy and out', (_, c) => {
    expect(tf.getBackend()).toBe('wasm');
    const inputs = convInputs(c);
    const a = tf.ones([32, 6]);
    const b = tf.ones([32, 5]);
    const before = counts();
    tf.tidy(() => {
      convGradients(c, inputs);
      tf.matMul(a, b, true, false);
    });
    expect(counts()).toEqual(before);
    tf.dispose([...convGradients(c, inputs), tf.matMul(a, b, true, false)]);
    expect(counts()).toEqual(before);
    tf.dispose([inputs.x, inputs.filter, inputs.dy, a, b]);
  });
});
