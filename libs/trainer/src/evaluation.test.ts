import type { ImageDataset } from '@moco/data';
import { cifarDemoDefaults, EVALUATION_PROTOCOL, tf } from '@moco/moco';
import { beforeAll, describe, expect, it } from 'vitest';
import { measureBaselines, probeSplit } from './evaluation.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Two classes told apart by brightness (left half bright or right half bright), with noise: raw pixels separate them. */
function halves(count: number, seed: number): ImageDataset {
  const size = 8;
  let s = seed;
  const noise = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) % 80) - 40;
  const pixels = new Uint8Array(count * size * size);
  const labels = Int32Array.from({ length: count }, (_, i) => i % 2);
  labels.forEach((c, i) => {
    for (let p = 0; p < size * size; p++) {
      const left = p % size < size / 2;
      pixels[i * size * size + p] = Math.max(0, Math.min(255, (left === (c === 0) ? 200 : 50) + noise()));
    }
  });
  return { count, height: size, width: size, channels: 1, pixels, labels };
}

describe('evaluation', () => {
  it('splits a seeded, capped subset of the eval set into probe training and held-out images', () => {
    const { maxImages, heldOut } = EVALUATION_PROTOCOL.probe;
    const small = probeSplit(100);
    expect(small.heldOut.length).toBe(Math.round(100 * heldOut));
    expect(new Set([...small.train, ...small.heldOut]).size).toBe(100);
    expect(probeSplit(100)).toEqual(small);
    const large = probeSplit(maxImages * 3);
    expect(large.train.length + large.heldOut.length).toBe(maxImages);
  });

  it('measures raw-pixel and random-encoder baselines, kNN and probe, well above chance on a separable set', async () => {
    const config = { ...cifarDemoDefaults, inChannels: 1 as const, width: 4, dim: 8 };
    const sets = { bank: halves(64, 1), test: halves(80, 2) };
    const transform = { size: 8, mean: [0.5], std: [0.25] };
    const b = await measureBaselines(config, sets, transform, { k: 5 });
    expect(b.rawKnnAccuracy).toBeGreaterThan(0.9);
    expect(b.rawProbeAccuracy).toBeGreaterThan(0.9);
    for (const v of [b.randomKnnAccuracy, b.randomProbeAccuracy]) expect(v).toBeGreaterThanOrEqual(0);
    // Seeded: measured twice, the same figures.
    expect(await measureBaselines(config, sets, transform, { k: 5 })).toEqual(b);
  });
});
