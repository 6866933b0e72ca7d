import * as tf from './tf.js';

/** How BatchNorm behaves in one forward pass. */
export interface BnMode {
  training: boolean;
  /** Sub-batches normalised separately in training (the CIFAR demo's SplitBatchNorm). */
  splits: number;
  momentum: number;
  eps: number;
  /** Write the running statistics (training only). */
  updateStats: boolean;
}

/** Convolution without bias, PyTorch's symmetric zero padding. */
export function conv2d(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  return tf.conv2d(x, w, stride, pad === 0 ? 'valid' : pad);
}

/** The largest split count <= wanted that divides n, so a short last batch still runs. */
export function effectiveSplits(n: number, wanted: number): number {
  let s = Math.min(wanted, n);
  while (n % s !== 0) s--;
  return s;
}

/**
 * BatchNorm with PyTorch semantics and the CIFAR demo's split statistics: sample i belongs to split
 * i % S (the demo views [N, C] as [N/S, S*C]); running statistics move by `momentum` towards each
 * split's statistics (unbiased variance) and are stored as the mean over splits.
 */
export function batchNorm(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  runningMean: tf.Variable,
  runningVar: tf.Variable,
  mode: BnMode,
): tf.Tensor4D {
  if (!mode.training) {
    return x.sub(runningMean).mul(runningVar.add(mode.eps).rsqrt()).mul(gamma).add(beta);
  }
  const [n, h, w, c] = x.shape;
  const s = effectiveSplits(n, mode.splits);
  const xs = x.reshape([n / s, s, h, w, c]);
  const mean = xs.mean([0, 2, 3], true);
  // Not tf.squaredDifference: its gradient does not reduce over broadcast dimensions (tfjs 4.22).
  const centered = xs.sub(mean);
  const variance = centered.square().mean([0, 2, 3], true);
  const y = centered.mul(variance.add(mode.eps).rsqrt()).mul(gamma).add(beta);
  if (mode.updateStats) {
    const count = (n / s) * h * w;
    const unbiased = count > 1 ? count / (count - 1) : 1;
    const m = mode.momentum;
    runningMean.assign(runningMean.mul(1 - m).add(mean.reshape([s, c]).mean(0).mul(m)));
    runningVar.assign(runningVar.mul(1 - m).add(variance.reshape([s, c]).mean(0).mul(m * unbiased)));
  }
  return y.reshape([n, h, w, c]);
}

export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return tf.matMul(x, w).add(b);
}

/** L2-normalise rows, as torch.nn.functional.normalize (eps 1e-12). */
export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return x.div(x.square().sum(1, true).sqrt().maximum(1e-12));
}
