import * as tf from './tf.js';

/** Logits [N, 1+K]: the positive q.k in column 0, then q against every queued key, over T. */
export function infoNceLogits(q: tf.Tensor2D, k: tf.Tensor2D, queue: tf.Tensor2D, T: number): tf.Tensor2D {
  return tf.tidy(() => {
    const lPos = q.mul(k).sum(1, true);
    const lNeg = tf.matMul(q, queue);
    return tf.concat([lPos, lNeg], 1).div(T) as tf.Tensor2D;
  });
}

/** Mean cross-entropy with label 0 for every row (the positive key). */
export function infoNceLoss(logits: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => logits.logSoftmax().slice([0, 0], [logits.shape[0], 1]).mean().neg() as tf.Scalar);
}
