import { batches, type ImageDataset } from '@moco/data';
import { augment, Rng, tf } from '@moco/moco';
import { beforeAll, describe, expect, it } from 'vitest';
import { batchViews } from './batch-views.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('batchViews', () => {
  it("draws the query view, then the key view, of the batch's images: augment's views in that order", () => {
    const rng = new Rng(1);
    const ds: ImageDataset = { count: 6, height: 12, width: 12, channels: 3, pixels: Uint8Array.from({ length: 6 * 12 * 12 * 3 }, () => rng.int(256)) };
    const cfg = { pipeline: 'v2' as const, size: 10, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
    const batch = [...batches(ds, { batchSize: 4, order: Int32Array.from([5, 0, 3, 2, 1, 4]) })][0]!;
    const before = tf.memory().numTensors;
    const views = batchViews(batch, ds, cfg, new Rng(2));
    expect(views.query.shape).toEqual([4, 10, 10, 3]);
    expect(views.seconds).toBeGreaterThan(0);

    const expectedRng = new Rng(2);
    const [query, key] = tf.tidy(() => {
      const images = tf.tensor4d(batch.pixels, [4, 12, 12, 3], 'int32');
      return [augment(images, cfg, expectedRng).dataSync(), augment(images, cfg, expectedRng).dataSync()];
    });
    expect(views.query.dataSync()).toEqual(query);
    expect(views.key.dataSync()).toEqual(key);
    tf.dispose([views.query, views.key]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
