import { Rng } from '../rng.js';
import { Sgd } from '../sgd.js';
import * as tf from '../tf.js';
import { accuracy } from './knn.js';

export interface LinearProbeOptions {
  numClasses: number;
  epochs?: number;
  /** The official MoCo linear protocol: lr 30, no weight decay, x0.1 at 60% and 80% of the epochs. */
  lr?: number;
  weightDecay?: number;
  batchSize?: number;
  seed?: number;
}

/**
 * Linear classification on frozen features (the backbone in inference mode, pooled features
 * extracted once). Returns the top-1 accuracy on the test features and the final training loss.
 * A non-finite loss stops with an error naming the learning rate, rather than reporting NaN.
 */
export async function linearProbe(
  train: { data: Float32Array; dim: number; labels: Int32Array },
  test: { data: Float32Array; labels: Int32Array },
  opts: LinearProbeOptions,
): Promise<{ accuracy: number; loss: number }> {
  const { dim } = train;
  const { numClasses } = opts;
  const epochs = opts.epochs ?? 100;
  const lr = opts.lr ?? 30;
  const batchSize = opts.batchSize ?? 256;
  const n = train.labels.length;
  const rng = new Rng(opts.seed ?? 0);
  const bound = 1 / Math.sqrt(dim);
  const w = tf.variable(tf.randomUniform([dim, numClasses], -bound, bound, 'float32', opts.seed ?? 0));
  const b = tf.variable(tf.zeros([numClasses]));
  const params = new Map([
    ['weight', w],
    ['bias', b],
  ]);
  const sgd = new Sgd(0.9, opts.weightDecay ?? 0);
  const x = tf.tensor2d(train.data, [n, dim]);
  const y = tf.tensor1d(train.labels, 'int32');
  let loss = 0;
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const epochLr = lr * 0.1 ** [0.6, 0.8].filter((f) => epoch >= Math.round(f * epochs)).length;
      const order = rng.permutation(n);
      let sum = 0;
      let batches = 0;
      for (let start = 0; start < n; start += batchSize) {
        const idx = tf.tensor1d(order.subarray(start, Math.min(start + batchSize, n)), 'int32');
        const { value, grads } = tf.variableGrads(() => {
          const logits = tf.matMul(tf.gather(x, idx), w).add(b);
          return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.gather(y, idx), numClasses), logits) as tf.Scalar;
        }, [w, b]);
        sgd.step(params, new Map([['weight', grads[w.name]!], ['bias', grads[b.name]!]]), epochLr);
        sum += (await value.data())[0]!;
        batches++;
        tf.dispose([value, idx, ...Object.values(grads)]);
      }
      loss = sum / batches;
      if (!Number.isFinite(loss)) {
        throw new Error(`linear probe diverged at epoch ${epoch} (loss ${loss}); lower the learning rate (${lr})`);
      }
    }
    const m = test.labels.length;
    const pred = tf.tidy(() => tf.matMul(tf.tensor2d(test.data, [m, dim]), w).add(b).argMax(1));
    const predicted = await pred.data<'int32'>();
    pred.dispose();
    return { accuracy: accuracy(predicted, test.labels), loss };
  } finally {
    tf.dispose([x, y, w, b]);
    sgd.dispose();
  }
}
