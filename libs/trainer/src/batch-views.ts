import type { Batch, ImageDataset } from '@moco/data';
import { augmentPixels, tf, type AugmentConfig, type Rng } from '@moco/moco';

/** The two augmented views of one batch, ready for a MoCo step (the caller disposes them). */
export interface BatchViews {
  query: tf.Tensor4D;
  key: tf.Tensor4D;
  /** Seconds it took to make them. */
  seconds: number;
}

/**
 * The query view, then the key view, of a batch's images, each drawn from `rng` (in that order, so
 * a run goes on from a checkpoint's RNG state) and applied to the batch's uint8 pixels; the
 * float32 values become the tensors as they are, with no copy in between.
 */
export function batchViews(batch: Batch, ds: Pick<ImageDataset, 'height' | 'width' | 'channels'>, cfg: AugmentConfig, rng: Rng): BatchViews {
  const started = performance.now();
  const shape = { count: batch.indices.length, height: ds.height, width: ds.width, channels: ds.channels };
  const tensorShape: [number, number, number, number] = [shape.count, cfg.size, cfg.size, ds.channels];
  const query = tf.tensor4d(augmentPixels(batch.pixels, shape, cfg, rng), tensorShape, 'float32');
  const key = tf.tensor4d(augmentPixels(batch.pixels, shape, cfg, rng), tensorShape, 'float32');
  return { query, key, seconds: (performance.now() - started) / 1000 };
}
