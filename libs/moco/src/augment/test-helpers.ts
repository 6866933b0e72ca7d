import * as tf from '../tf.js';
import { Rng } from '../rng.js';

/** Random uint8-valued images [n,h,w,c] from a seeded Rng (tests need reproducible inputs too). */
export function randomImages(seed: number, shape: [number, number, number, number], dtype: 'int32' | 'float32' = 'int32'): tf.Tensor4D {
  const rng = new Rng(seed);
  const values = Int32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(256));
  return tf.tensor4d(values, shape, dtype);
}

/** Largest absolute difference between two tensors' values. */
export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync<'float32'>();
  const y = b.dataSync<'float32'>();
  if (x.length !== y.length) throw new Error(`maxAbsDiff: ${x.length} vs ${y.length} values`);
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
}
