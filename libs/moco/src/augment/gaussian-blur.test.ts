import * as tf from '../tf.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCpuBackend } from '../testing/setup-cpu.js';
import { blurKernelSize, gaussianBlur as blurImage, gaussianKernel1d } from './gaussian-blur.js';
import { maxAbsDiff, randomImages } from './test-helpers.js';

beforeAll(useCpuBackend);

/** Each square image blurred with its own sigma (null: left as is). */
function gaussianBlur(x: tf.Tensor4D, sigmas: readonly (number | null)[]): tf.Tensor4D {
  const [n, size, , channels] = x.shape;
  const values = Float32Array.from(x.dataSync());
  const scratch = new Float32Array(size * size * channels);
  for (let b = 0; b < n; b++) {
    const sigma = sigmas[b]!;
    if (sigma !== null) blurImage(values, b * size * size * channels, size, channels, sigma, scratch);
  }
  return tf.tensor4d(values, x.shape);
}

describe('gaussian blur', () => {
  it('uses an odd kernel of about 10% of the image, at least 3 taps', () => {
    expect([28, 32, 64, 96, 224].map(blurKernelSize)).toEqual([3, 3, 7, 9, 23]);
  });

  it("has torchvision's kernel weights", () => {
    // torchvision.transforms.functional._get_gaussian_kernel1d(3, 1.0)
    Array.from(gaussianKernel1d(3, 1)).forEach((w, i) => expect(w).toBeCloseTo([0.27406862, 0.45186276, 0.27406862][i]!, 7));
  });

  it('spreads a delta into a symmetric separable kernel summing to 1 in each channel', () => {
    const size = 64; // 7 taps
    const delta = tf.buffer([1, size, size, 3]);
    [0, 1, 2].forEach((c) => delta.set(1, 0, 32, 32, c));
    const out = gaussianBlur(delta.toTensor() as tf.Tensor4D, [1.5]);
    const kernel = gaussianKernel1d(7, 1.5);
    const values = out.arraySync()[0]!;
    const at = (dy: number, dx: number, c: number) => values[32 + dy]![32 + dx]![c]!;
    for (let c = 0; c < 3; c++) {
      let sum = 0;
      for (let dy = -31; dy <= 31; dy++) {
        for (let dx = -31; dx <= 31; dx++) {
          sum += at(dy, dx, c);
          // Symmetric: up-down, left-right and across the diagonal.
          expect(at(dy, dx, c)).toBeCloseTo(at(-dy, dx, c), 7);
          expect(at(dy, dx, c)).toBeCloseTo(at(dy, -dx, c), 7);
          expect(at(dy, dx, c)).toBeCloseTo(at(dx, dy, c), 7);
          const inside = Math.abs(dy) <= 3 && Math.abs(dx) <= 3;
          expect(at(dy, dx, c)).toBeCloseTo(inside ? kernel[dy + 3]! * kernel[dx + 3]! : 0, 7);
        }
      }
      expect(sum).toBeCloseTo(1, 5);
    }
  });

  it('reflects at the border (edge pixel not repeated), as torch pad mode "reflect"', () => {
    const delta = tf.buffer([1, 8, 8, 1]);
    delta.set(1, 0, 0, 0, 0);
    const out = gaussianBlur(delta.toTensor() as tf.Tensor4D, [1]).arraySync()[0]!;
    const [a, b] = gaussianKernel1d(3, 1);
    expect(out[0]![0]![0]).toBeCloseTo(b! * b!, 7);
    expect(out[0]![1]![0]).toBeCloseTo(a! * b!, 7);
    expect(out[1]![1]![0]).toBeCloseTo(a! * a!, 7);
    expect(out[2]![0]![0]).toBeCloseTo(0, 7);
  });

  it('blurs each image with its own sigma and leaves null-sigma images exactly as they are', () => {
    const images = tf.div(randomImages(13, [3, 16, 16, 3], 'float32'), 255) as tf.Tensor4D;
    const out = gaussianBlur(images, [0.5, null, 2]);
    const [a, b, c] = tf.split(out, 3) as tf.Tensor4D[];
    const [x, y, z] = tf.split(images, 3) as tf.Tensor4D[];
    expect(maxAbsDiff(b!, y!)).toBe(0);
    expect(maxAbsDiff(a!, gaussianBlur(x!, [0.5]))).toBeLessThan(1e-6);
    expect(maxAbsDiff(c!, gaussianBlur(z!, [2]))).toBeLessThan(1e-6);
    expect(maxAbsDiff(a!, x!)).toBeGreaterThan(0.01);
    const constant = tf.fill([1, 16, 16, 1], 0.7) as tf.Tensor4D;
    expect(maxAbsDiff(gaussianBlur(constant, [2]), constant)).toBeLessThan(1e-6);
  });
});
