import * as tf from '../tf.js';

export interface KnnOptions {
  k?: number;
  /** Temperature of the exp(sim / t) vote weights. */
  t?: number;
  numClasses: number;
  /** Queries per chunk: bounds the [chunk, bank] similarity matrix. */
  chunk?: number;
}

/**
 * Weighted kNN classifier of the MoCo CIFAR demo (after Wu et al. 2018): the k most cosine-similar
 * bank features vote for their labels with weight exp(sim / t). Features must be L2-normalised rows.
 */
export async function knnPredict(
  bank: { data: Float32Array; dim: number; labels: Int32Array },
  queries: Float32Array,
  opts: KnnOptions,
): Promise<Int32Array> {
  const { dim, labels } = bank;
  const n = labels.length;
  const m = queries.length / dim;
  const k = Math.min(opts.k ?? 200, n);
  const t = opts.t ?? 0.1;
  const chunk = opts.chunk ?? 256;
  const bankT = tf.tensor2d(bank.data, [n, dim]).transpose();
  const bankLabels = tf.tensor1d(labels, 'int32');
  const predictions = new Int32Array(m);
  for (let start = 0; start < m; start += chunk) {
    const rows = Math.min(chunk, m - start);
    const pred = tf.tidy(() => {
      const q = tf.tensor2d(queries.subarray(start * dim, (start + rows) * dim), [rows, dim]);
      const { values, indices } = tf.topk(tf.matMul(q, bankT), k);
      const votes = tf.oneHot(tf.gather(bankLabels, indices), opts.numClasses); // [rows, k, C]
      const scores = votes.mul(values.div(t).exp().expandDims(2)).sum(1);
      return scores.argMax(1);
    });
    predictions.set(await pred.data<'int32'>(), start);
    pred.dispose();
  }
  tf.dispose([bankT, bankLabels]);
  return predictions;
}

export function accuracy(predictions: Int32Array, labels: Int32Array): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) correct++;
  return correct / labels.length;
}

/** L2-normalise the rows of a flat [n, dim] array in place (for raw-pixel baselines and banks). */
export function normalizeRows(data: Float32Array, dim: number): Float32Array {
  for (let off = 0; off < data.length; off += dim) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += data[off + j]! ** 2;
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let j = 0; j < dim; j++) data[off + j]! *= inv;
  }
  return data;
}
