import { Rng } from '../rng.js';
import * as tf from '../tf.js';
import type { BackendName } from '../config.js';
import { withBackend } from './select-backend.js';

export interface Readback {
  shape: number[];
  values: Float32Array;
}

/**
 * Runs `fn` on backend `name` and reads its results back as plain arrays. Inputs should be built
 * inside `fn` (from plain arrays), so each backend computes from its own copy.
 */
export function readOn(name: BackendName, fn: () => tf.Tensor[]): Promise<Readback[]> {
  return withBackend(name, () =>
    tf.tidy(() => fn().map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) }))),
  );
}

/** max |actual - expected| relative to max |expected|: robust to entries near zero. */
export function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

/** Deterministic values in [-1, 1), the same on every backend. */
export function seeded(size: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: size }, () => rng.uniform(-1, 1));
}
