import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '../tf.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { type AugmentationName, augment, evalTransform } from './index.js';
import { maxAbsDiff, randomImages } from './test-helpers.js';

beforeAll(() => {
  const dist = path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  setWasmPaths(`${dist}/dist/`);
});

/** Runs `f` on a backend and returns its output's values (tensors made inside live on that backend). */
async function on(backend: string, f: () => tf.Tensor): Promise<Float32Array> {
  expect(await tf.setBackend(backend)).toBe(true);
  const out = f();
  const values = out.dataSync<'float32'>().slice();
  out.dispose();
  return values;
}

describe('augment on the wasm backend', () => {
  const cases: [AugmentationName, number][] = [['v1', 3], ['v2', 3], ['v2', 1], ['gray', 1], ['gray', 3]];
  for (const [pipeline, channels] of cases) {
    it(`${pipeline}, ${channels} channel(s): the same views as on cpu, deterministic, no leaks`, async () => {
      const cfg = { pipeline, size: 24, mean: Array<number>(channels).fill(0.5), std: Array<number>(channels).fill(0.25) };
      const run = () => {
        const images = randomImages(50, [16, 32, 32, channels]);
        const out = augment(images, cfg, new Rng(51));
        images.dispose();
        return out;
      };
      const wasm = await on('wasm', run);
      expect(await on('wasm', run)).toEqual(wasm);
      const before = tf.memory().numTensors;
      await on('wasm', run);
      expect(tf.memory().numTensors).toBe(before);
      const cpu = await on('cpu', run);
      expect(maxAbsDiff(tf.tensor(wasm), tf.tensor(cpu))).toBeLessThan(1e-4);
    });
  }

  it('evalTransform matches cpu', async () => {
    const run = () => evalTransform(randomImages(52, [4, 28, 28, 1], 'float32'), { size: 32, mean: [0.3], std: [0.3] });
    expect(maxAbsDiff(tf.tensor(await on('wasm', run)), tf.tensor(await on('cpu', run)))).toBeLessThan(1e-5);
  });
});
