import * as tf from './tf.js';
import type { Rng } from './rng.js';

/**
 * The dictionary of negative keys: a [dim, K] matrix used as a ring buffer. New keys overwrite the
 * oldest columns starting at `ptr`, wrapping around the end, so any batch size works (the official
 * code asserts K % batch == 0 instead).
 */
export class KeyQueue {
  readonly keys: tf.Variable;
  ptr = 0;

  constructor(
    readonly dim: number,
    readonly size: number,
    init: Rng | tf.Tensor2D,
  ) {
    const start =
      init instanceof tf.Tensor
        ? init.clone()
        : tf.tidy(() => {
            // randn(dim, K) normalised along dim, as the reference.
            const values = new Float32Array(dim * size);
            for (let i = 0; i < values.length; i++) values[i] = init.normal();
            const q = tf.tensor2d(values, [dim, size]);
            return q.div(q.square().sum(0, true).sqrt().maximum(1e-12));
          });
    this.keys = tf.variable(start, false);
    start.dispose();
  }

  /** Writes k ([n, dim], rows are keys) into the next n columns. */
  enqueue(k: tf.Tensor2D): void {
    const n = k.shape[0];
    if (n > this.size) throw new Error(`cannot enqueue ${n} keys into a queue of ${this.size}`);
    const next = tf.tidy(() => {
      const cols = k.transpose();
      const end = this.ptr + n;
      if (end <= this.size) {
        const parts = [this.keys.slice([0, 0], [this.dim, this.ptr]), cols];
        if (end < this.size) parts.push(this.keys.slice([0, end], [this.dim, this.size - end]));
        return tf.concat(parts, 1);
      }
      const head = n - (this.size - this.ptr); // columns that wrap to the front
      return tf.concat(
        [
          cols.slice([0, n - head], [this.dim, head]),
          this.keys.slice([0, head], [this.dim, this.ptr - head]),
          cols.slice([0, 0], [this.dim, n - head]),
        ],
        1,
      );
    });
    this.keys.assign(next);
    next.dispose();
    this.ptr = (this.ptr + n) % this.size;
  }

  dispose(): void {
    this.keys.dispose();
  }
}
