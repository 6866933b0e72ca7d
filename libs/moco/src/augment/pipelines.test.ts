import * as tf from '../tf.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { useCpuBackend } from '../testing/setup-cpu.js';
import { type AugmentationName, type AugmentConfig, applyViews, augment, augmentPixels, evalTransform, sampleViews } from './index.js';
import { maxAbsDiff, randomImages } from './test-helpers.js';

beforeAll(useCpuBackend);

const PIPELINES: AugmentationName[] = ['v1', 'v2', 'gray'];
const config = (pipeline: AugmentationName, channels: number, size = 24): AugmentConfig => ({
  pipeline,
  size,
  mean: [0.5, 0.4, 0.3].slice(0, channels),
  std: [0.25, 0.2, 0.3].slice(0, channels),
});

describe('augment', () => {
  for (const pipeline of PIPELINES) {
    for (const channels of [1, 3]) {
      it(`${pipeline}, ${channels} channel(s): two calls give two different float32 views of the right shape`, () => {
        const images = randomImages(20, [6, 32, 32, channels]);
        const rng = new Rng(21);
        const q = augment(images, config(pipeline, channels), rng);
        const k = augment(images, config(pipeline, channels), rng);
        for (const view of [q, k]) {
          expect(view.shape).toEqual([6, 24, 24, channels]);
          expect(view.dtype).toBe('float32');
          expect(Array.from(view.dataSync()).every(Number.isFinite)).toBe(true);
        }
        const [qs, ks] = [tf.split(q, 6), tf.split(k, 6)];
        qs.forEach((qi, i) => expect(maxAbsDiff(qi, ks[i]!)).toBeGreaterThan(0.1));
      });
    }
  }

  it('is deterministic: same seed, same views bit for bit; another seed, other views', () => {
    const images = randomImages(22, [8, 32, 32, 3], 'float32');
    const run = (seed: number) => augment(images, config('v2', 3), new Rng(seed)).dataSync();
    expect(run(1)).toEqual(run(1));
    expect(maxAbsDiff(tf.tensor(run(1)), tf.tensor(run(2)))).toBeGreaterThan(0.1);
  });

  it('resumes exactly from a saved RNG state', () => {
    const images = randomImages(23, [8, 32, 32, 3]);
    const rng = new Rng(3);
    augment(images, config('v1', 3), rng);
    const saved = JSON.parse(JSON.stringify(rng.state()));
    const next = augment(images, config('v1', 3), rng).dataSync();
    const resumed = augment(images, config('v1', 3), new Rng(saved)).dataSync();
    expect(resumed).toEqual(next);
  });

  it('gives an int32 and a float32 batch of the same values the same views', () => {
    const a = augment(randomImages(24, [4, 20, 20, 3], 'int32'), config('v2', 3, 16), new Rng(5));
    const b = augment(randomImages(24, [4, 20, 20, 3], 'float32'), config('v2', 3, 16), new Rng(5));
    expect(maxAbsDiff(a, b)).toBe(0);
  });

  it('on uint8 pixels (augmentPixels, what training feeds the step) gives the same views as on a tensor', () => {
    for (const [pipeline, channels] of [['v2', 3], ['gray', 1]] as const) {
      const images = randomImages(27, [5, 20, 20, channels]);
      const pixels = Uint8Array.from(images.dataSync());
      const shape = { count: 5, height: 20, width: 20, channels };
      const fromPixels = augmentPixels(pixels, shape, config(pipeline, channels, 16), new Rng(8));
      expect(fromPixels).toEqual(augment(images, config(pipeline, channels, 16), new Rng(8)).dataSync());
      const rng = new Rng(9);
      expect(() => augmentPixels(pixels, shape, config(pipeline, channels === 1 ? 3 : 1), rng)).toThrow(/channels/);
      expect(rng.next()).toBe(new Rng(9).next());
    }
  });

  it('rejects bad configs before drawing anything', () => {
    const rng = new Rng(6);
    const images = randomImages(25, [2, 8, 8, 3]);
    expect(() => augment(images, config('v2', 1), rng)).toThrow(/3 channels/);
    expect(() => augment(randomImages(25, [2, 8, 8, 2]), config('v2', 3), rng)).toThrow(/1 or 3 channels/);
    expect(rng.next()).toBe(new Rng(6).next());
  });

  it('leaks no tensors', () => {
    const images = randomImages(26, [4, 32, 32, 3]);
    const rng = new Rng(7);
    const run = () => {
      for (const pipeline of PIPELINES) augment(images, config(pipeline, 3), rng).dispose();
      evalTransform(images, config('v1', 3)).dispose();
    };
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) run();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('sampleViews statistics', () => {
  const n = 5000;
  const fraction = (flags: boolean[]) => flags.filter(Boolean).length / flags.length;

  it('flips half, grayscales a fifth, jitters and blurs at the pipeline rates', () => {
    const rng = new Rng(30);
    const v1 = sampleViews('v1', n, 32, 32, rng);
    const v2 = sampleViews('v2', n, 32, 32, rng);
    const gray = sampleViews('gray', n, 32, 32, rng);
    const hasGray = (v: (typeof v1)[number]) => v.color.some((op) => op.kind === 'grayscale');
    for (const views of [v1, v2, gray]) expect(fraction(views.map((v) => v.flip))).toBeCloseTo(0.5, 1);
    expect(fraction(v1.map(hasGray))).toBeCloseTo(0.2, 1);
    expect(fraction(v2.map(hasGray))).toBeCloseTo(0.2, 1);
    expect(v1.every((v) => v.color.filter((op) => op.kind !== 'grayscale').length === 4 && v.blurSigma === null)).toBe(true);
    expect(fraction(v2.map((v) => v.color.some((op) => op.kind === 'hue')))).toBeCloseTo(0.8, 1);
    expect(fraction(v2.map((v) => v.blurSigma !== null))).toBeCloseTo(0.5, 1);
    const sigmas = v2.flatMap((v) => (v.blurSigma === null ? [] : [v.blurSigma]));
    expect(Math.min(...sigmas)).toBeGreaterThanOrEqual(0.1);
    expect(Math.max(...sigmas)).toBeLessThanOrEqual(2);
    expect(fraction(gray.map((v) => v.color.length === 2))).toBeCloseTo(0.8, 1);
    expect(gray.every((v) => v.color.length === 0 || (v.color[0]!.kind === 'brightness' && v.color[1]!.kind === 'contrast'))).toBe(true);
    for (const views of [v1, v2, gray]) {
      const areas = views.map((v) => (v.crop.height * v.crop.width) / (32 * 32));
      expect(Math.min(...areas)).toBeGreaterThan(0.2 - 1 / 32); // w and h are rounded
      expect(Math.max(...areas)).toBeLessThanOrEqual(1);
    }
  });

  it('turns about a fifth of v2 views gray end to end (equal channels in the output)', () => {
    const views = 400;
    const out = augment(randomImages(31, [views, 16, 16, 3]), { pipeline: 'v2', size: 16, mean: [0, 0, 0], std: [1, 1, 1] }, new Rng(32));
    const values = out.dataSync();
    const gray = Array.from({ length: views }, (_, i) => {
      for (let p = i * 16 * 16; p < (i + 1) * 16 * 16; p++) {
        if (values[3 * p] !== values[3 * p + 1] || values[3 * p] !== values[3 * p + 2]) return false;
      }
      return true;
    });
    expect(Math.abs(fraction(gray) - 0.2)).toBeLessThan(0.06);
  });
});

describe('applyViews and evalTransform', () => {
  it('an identity view equals the eval transform; a flip-only view is its mirror image', () => {
    const images = randomImages(40, [2, 24, 24, 3]);
    const cfg = config('v1', 3);
    const crop = { top: 0, left: 0, height: 24, width: 24 };
    const view = { crop, color: [], blurSigma: null, flip: false };
    const expected = evalTransform(images, cfg);
    expect(maxAbsDiff(applyViews(images, [view, view], cfg), expected)).toBeLessThan(1e-5);
    const flipped = applyViews(images, [{ ...view, flip: true }, view], cfg);
    expect(maxAbsDiff(flipped, tf.concat([tf.reverse(tf.slice(expected, 0, 1), 2), tf.slice(expected, 1, 1)]))).toBeLessThan(1e-5);
  });

  it('evalTransform scales, normalises and resizes with half-pixel bilinear', () => {
    const images = randomImages(41, [2, 32, 32, 1]);
    const cfg = { size: 32, mean: [0.5], std: [0.25] };
    const same = evalTransform(images, cfg);
    const expected = tf.div(tf.sub(tf.div(tf.cast(images, 'float32'), 255), 0.5), 0.25);
    expect(maxAbsDiff(same, expected)).toBeLessThan(1e-6);
    const small = evalTransform(images, { ...cfg, size: 20 });
    const resized = tf.image.resizeBilinear(tf.cast(images, 'float32') as tf.Tensor4D, [20, 20], false, true);
    expect(maxAbsDiff(small, tf.div(tf.sub(tf.div(resized, 255), 0.5), 0.25))).toBeLessThan(1e-5);
  });
});
