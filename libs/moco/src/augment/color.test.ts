import * as tf from '../tf.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { useCpuBackend } from '../testing/setup-cpu.js';
import { type ColorOp, sampleColorJitter } from './color-jitter.js';
import { applyColorOps as applyToImage } from './color-ops.js';
import { maxAbsDiff } from './test-helpers.js';

beforeAll(useCpuBackend);

/** Each image of the batch through its own ops. */
function applyColorOps(x: tf.Tensor4D, ops: readonly (readonly ColorOp[])[]): tf.Tensor4D {
  const [n, height, width, channels] = x.shape;
  const values = Float32Array.from(x.dataSync());
  for (let b = 0; b < n; b++) applyToImage(values, b * height * width * channels, height * width, channels, ops[b]!);
  return tf.tensor4d(values, x.shape);
}

/** One image, one row of pixels. */
const pixels = (values: number[][], channels = 3) => tf.tensor4d(values.flat(), [1, 1, values.length, channels]);
const values = (t: tf.Tensor) => Array.from(t.dataSync());
const expectClose = (actual: number[], expected: number[], digits = 6) => {
  expect(actual.length).toBe(expected.length);
  actual.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, digits));
};
const luma = ([r, g, b]: number[]) => 0.299 * r! + 0.587 * g! + 0.114 * b!;

describe('applyColorOps', () => {
  it('brightness multiplies and clamps at 1', () => {
    const out = applyColorOps(pixels([[0.2, 0.5, 0.8]]), [[{ kind: 'brightness', factor: 1.5 }]]);
    expectClose(values(out), [0.3, 0.75, 1]);
  });

  it('grayscale is 0.299 R + 0.587 G + 0.114 B in all three channels', () => {
    const rgb = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.2, 0.4, 0.6]];
    const out = applyColorOps(pixels(rgb), [[{ kind: 'grayscale' }]]);
    expectClose(values(out), [0.299, 0.587, 0.114, luma([0.2, 0.4, 0.6])].flatMap((v) => [v, v, v]));
  });

  it('contrast blends with the mean of the grayscale image and clamps', () => {
    // 1 channel: the image is its own gray; mean 0.3.
    const gray = tf.tensor4d([0, 0.2, 0.4, 0.6], [1, 2, 2, 1]);
    expectClose(values(applyColorOps(gray, [[{ kind: 'contrast', factor: 0.5 }]])), [0.15, 0.25, 0.35, 0.45]);
    expectClose(values(applyColorOps(gray, [[{ kind: 'contrast', factor: 3 }]])), [0, 0, 0.6, 1]);
    // 3 channels: the mean gray of a red and a white pixel is (0.299 + 1) / 2.
    const mean = (0.299 + 1) / 2;
    const out = applyColorOps(pixels([[1, 0, 0], [1, 1, 1]]), [[{ kind: 'contrast', factor: 0.5 }]]);
    expectClose(values(out), [1, 0, 0, 1, 1, 1].map((v) => 0.5 * v + 0.5 * mean));
  });

  it('saturation blends with the gray image; 1-channel images ignore saturation, hue and grayscale', () => {
    const rgb = [0.2, 0.4, 0.6];
    const out = applyColorOps(pixels([rgb]), [[{ kind: 'saturation', factor: 0.25 }]]);
    expectClose(values(out), rgb.map((v) => 0.25 * v + 0.75 * luma(rgb)));
    const mono = tf.tensor4d([0.1, 0.5, 0.9, 0.3], [1, 2, 2, 1]);
    const ops: ColorOp[] = [{ kind: 'saturation', factor: 1.7 }, { kind: 'hue', shift: 0.3 }, { kind: 'grayscale' }];
    expect(maxAbsDiff(applyColorOps(mono, [ops]), mono)).toBe(0);
  });

  it("applies each image's ops in that image's own order", () => {
    const img = tf.tensor4d([0.1, 0.3, 0.5, 0.9, 0.2, 0.6, 0.7, 0.4, 0.0, 1, 0.8, 0.5], [1, 2, 2, 3]);
    const b: ColorOp = { kind: 'brightness', factor: 1.5 };
    const c: ColorOp = { kind: 'contrast', factor: 0.5 };
    const h: ColorOp = { kind: 'hue', shift: 0.2 };
    const orders = [[b, c, h], [h, c, b], [c, b], []];
    const batch = applyColorOps(tf.concat(orders.map(() => img)), orders);
    const oneByOne = (ops: ColorOp[]) => ops.reduce((x, op) => applyColorOps(x, [[op]]), img as tf.Tensor4D);
    expect(maxAbsDiff(batch, tf.concat(orders.map(oneByOne)))).toBeLessThan(1e-6);
    expect(maxAbsDiff(oneByOne([b, c, h]), oneByOne([h, c, b]))).toBeGreaterThan(0.01);
  });
});

describe('hue (YIQ rotation)', () => {
  const hue = (rgb: number[][], shift: number) => values(applyColorOps(pixels(rgb), [[{ kind: 'hue', shift }]]));

  it('turns red towards green for +1/3 turn and towards blue for -1/3, and leaves grays alone', () => {
    // YIQ keeps luma, so pure red does not become pure green or blue, but they dominate.
    const [r1, g1, b1] = hue([[1, 0, 0]], 1 / 3);
    expect(g1).toBeGreaterThan(Math.max(r1!, b1!) + 0.5);
    const [r2, g2, b2] = hue([[1, 0, 0]], -1 / 3);
    expect(b2).toBeGreaterThan(Math.max(r2!, g2!) + 0.5);
    expectClose(hue([[0.4, 0.4, 0.4], [1, 1, 1]], 0.37), [0.4, 0.4, 0.4, 1, 1, 1]);
  });

  it('keeps luma, is the identity at 0 and 1 turn, and is undone by the opposite shift (inside the gamut)', () => {
    const rng = new Rng(11);
    // Low-saturation colours, so that rotations stay inside the RGB cube (no clamping).
    const rgb = Array.from({ length: 50 }, () => [0, 0, 0].map(() => 0.4 + 0.2 * rng.next()));
    for (const shift of [0.1, -0.25, 0.5]) {
      const shifted = hue(rgb, shift);
      const triples = rgb.map((_, i) => shifted.slice(3 * i, 3 * i + 3));
      expectClose(triples.map(luma), rgb.map(luma), 5);
      expectClose(values(applyColorOps(pixels(triples), [[{ kind: 'hue', shift: -shift }]])), rgb.flat(), 5);
    }
    expectClose(hue(rgb, 0), rgb.flat(), 6);
    expectClose(hue(rgb, 1), rgb.flat(), 5);
  });
});

describe('sampleColorJitter', () => {
  it('draws factors in range and every op in every position about equally often', () => {
    const rng = new Rng(12);
    const strength = { brightness: 0.4, contrast: 0.3, saturation: 0.2, hue: 0.1 };
    const position: Record<ColorOp['kind'], number[]> = {
      brightness: [0, 0, 0, 0],
      contrast: [0, 0, 0, 0],
      saturation: [0, 0, 0, 0],
      hue: [0, 0, 0, 0],
      grayscale: [0, 0, 0, 0],
    };
    const draws = 4000;
    for (let i = 0; i < draws; i++) {
      sampleColorJitter(rng, strength).forEach((op, pos) => {
        position[op.kind][pos]!++;
        if (op.kind === 'hue') expect(Math.abs(op.shift)).toBeLessThanOrEqual(strength.hue);
        else if (op.kind !== 'grayscale') expect(Math.abs(op.factor - 1)).toBeLessThanOrEqual(strength[op.kind]);
      });
    }
    expect(position.grayscale).toEqual([0, 0, 0, 0]);
    for (const kind of ['brightness', 'contrast', 'saturation', 'hue'] as const) {
      position[kind].forEach((count) => expect(Math.abs(count / draws - 0.25)).toBeLessThan(0.03));
    }
  });
});
