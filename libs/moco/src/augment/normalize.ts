import * as tf from '../tf.js';

/** Throws unless there is one mean and one positive std per channel. */
export function checkNormalization(channels: number, mean: readonly number[], std: readonly number[]): void {
  if (mean.length !== channels || std.length !== channels) {
    throw new Error(`normalize: ${channels} channels need ${channels} means and stds, got ${mean.length} and ${std.length}`);
  }
  if (std.some((s) => !(s > 0))) throw new Error(`normalize: std must be positive, got [${std.join(', ')}]`);
}

/** torchvision's Normalize: (x - mean) / std per channel, for x in [0, 1] (NHWC). */
export function normalize(x: tf.Tensor4D, mean: readonly number[], std: readonly number[]): tf.Tensor4D {
  return tf.tidy(() => tf.div(tf.sub(x, tf.tensor1d(Float32Array.from(mean))), tf.tensor1d(Float32Array.from(std))));
}
