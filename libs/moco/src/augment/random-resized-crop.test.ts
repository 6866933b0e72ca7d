import * as tf from '../tf.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { useCpuBackend } from '../testing/setup-cpu.js';
import { type CropBox, cropSamples, resizedCrop as cropImage, sampleCrop } from './random-resized-crop.js';
import { maxAbsDiff, randomImages } from './test-helpers.js';

beforeAll(useCpuBackend);

/** Box b of image b, mirrored where flips[b], resized to size x size. */
function resizedCrop(images: tf.Tensor4D, crops: CropBox[], flips: boolean[], size: number): tf.Tensor4D {
  const [n, height, width, channels] = images.shape;
  const values = images.dataSync();
  const out = new Float32Array(n * size * size * channels);
  crops.forEach((crop, b) => {
    const samples = cropSamples(crop, flips[b]!, size, height, width);
    cropImage(values, b * height * width * channels, { height, width, channels }, samples, out, b * size * size * channels);
  });
  return tf.tensor4d(out, [n, size, size, channels]);
}

describe('sampleCrop', () => {
  it('with scale 1 and ratio 1 on a square image crops the whole image', () => {
    expect(sampleCrop(new Rng(1), 32, 32, [1, 1], [1, 1])).toEqual({ top: 0, left: 0, height: 32, width: 32 });
  });

  it('falls back to the centre crop clamped to the ratio range after 10 failed attempts', () => {
    const rng = new Rng(2);
    // Aspect 4..5 at full area never fits a square: w = sqrt(area * r) > width.
    expect(sampleCrop(rng, 32, 32, [1, 1], [4, 5])).toEqual({ top: 12, left: 0, height: 8, width: 32 });
    const twenty = new Rng(2);
    for (let i = 0; i < 20; i++) twenty.next();
    expect(rng.next()).toBe(twenty.next());
  });

  it('keeps crops inside the image with area fraction in [0.2, 1] and ratio in [3/4, 4/3] up to rounding', () => {
    const rng = new Rng(3);
    const [height, width] = [224, 160];
    const fractions: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const c = sampleCrop(rng, height, width, [0.2, 1], [3 / 4, 4 / 3]);
      expect(c.top).toBeGreaterThanOrEqual(0);
      expect(c.left).toBeGreaterThanOrEqual(0);
      expect(c.top + c.height).toBeLessThanOrEqual(height);
      expect(c.left + c.width).toBeLessThanOrEqual(width);
      // Rounding w and h to integers moves each by at most half a pixel.
      expect((c.width + 0.5) / (c.height - 0.5)).toBeGreaterThanOrEqual(3 / 4);
      expect((c.width - 0.5) / (c.height + 0.5)).toBeLessThanOrEqual(4 / 3);
      fractions.push((c.height * c.width) / (height * width));
    }
    const roundingSlack = (height + width) / 2 / (height * width);
    expect(Math.min(...fractions)).toBeGreaterThanOrEqual(0.2 - roundingSlack);
    expect(Math.min(...fractions)).toBeLessThan(0.25);
    expect(Math.max(...fractions)).toBeLessThanOrEqual(1);
    expect(Math.max(...fractions)).toBeGreaterThan(0.9);
  });
});

describe('resizedCrop', () => {
  const full = { top: 0, left: 0, height: 32, width: 32 };

  // Bilinear weights are float32, so values (0..255 here) match to ~1e-4, not bit for bit.
  it('of the whole image at the same size is the image', () => {
    const images = randomImages(4, [2, 32, 32, 3]);
    expect(maxAbsDiff(resizedCrop(images, [full, full], [false, false], 32), images)).toBeLessThan(1e-3);
  });

  it('of the whole image equals a half-pixel bilinear resize when shrinking', () => {
    const images = randomImages(5, [2, 32, 32, 3], 'float32');
    const expected = tf.image.resizeBilinear(images, [20, 20], false, true);
    expect(maxAbsDiff(resizedCrop(images, [full, full], [false, false], 20), expected)).toBeLessThan(1e-3);
  });

  it('of the whole image equals an align-corners bilinear resize when enlarging (documented difference)', () => {
    const images = randomImages(6, [1, 8, 8, 1], 'float32');
    const box = { top: 0, left: 0, height: 8, width: 8 };
    const expected = tf.image.resizeBilinear(images, [20, 20], true, false);
    expect(maxAbsDiff(resizedCrop(images, [box], [false], 20), expected)).toBeLessThan(1e-3);
  });

  it('cuts exactly the integer box out of each image', () => {
    const images = randomImages(7, [2, 10, 12, 3]);
    const boxes = [{ top: 2, left: 3, height: 5, width: 5 }, { top: 5, left: 7, height: 5, width: 5 }];
    const out = resizedCrop(images, boxes, [false, false], 5);
    const expected = tf.concat([tf.slice(images, [0, 2, 3, 0], [1, 5, 5, 3]), tf.slice(images, [1, 5, 7, 0], [1, 5, 5, 3])]);
    expect(maxAbsDiff(out, expected)).toBeLessThan(1e-3);
  });

  it('never samples outside the image: crops at the edges of a constant image stay constant', () => {
    const images = tf.fill([1, 9, 7, 3], 200) as tf.Tensor4D;
    const rng = new Rng(8);
    for (let i = 0; i < 200; i++) {
      const crop = sampleCrop(rng, 9, 7, [0.05, 1], [1 / 3, 3]);
      const out = resizedCrop(images, [crop], [i % 2 === 0], 2 + (i % 40));
      expect(maxAbsDiff(out, tf.fill(out.shape, 200))).toBeLessThan(1e-3);
    }
  });

  it('mirrors the flagged images left-right (known 2x3 image, rows upsampled 2 -> 3)', () => {
    const image = tf.tensor4d([1, 2, 3, 4, 5, 6], [1, 2, 3, 1]);
    const box = { top: 0, left: 0, height: 2, width: 3 };
    const out = resizedCrop(tf.concat([image, image]), [box, box], [true, false], 3);
    const flipped = [3, 2, 1, 4.5, 3.5, 2.5, 6, 5, 4];
    const kept = [1, 2, 3, 2.5, 3.5, 4.5, 4, 5, 6];
    Array.from(out.dataSync()).forEach((v, i) => expect(v).toBeCloseTo([...flipped, ...kept][i]!, 4));
  });
});
