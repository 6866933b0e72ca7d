import * as tf from './tf.js';

/** Training-mode BatchNorm settings (in eval mode BN is folded into the convolutions: foldBn, foldedConv2d). */
export interface BnMode {
  /** Sub-batches normalised separately (the CIFAR demo's SplitBatchNorm). */
  splits: number;
  momentum: number;
  eps: number;
  /** Write the running statistics. */
  updateStats: boolean;
}

/** PyTorch's symmetric zero padding as tfjs takes it. */
const padding = (pad: number): 'valid' | number => (pad === 0 ? 'valid' : pad);

/** Convolution without bias, PyTorch's symmetric zero padding. */
export function conv2d(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  return tf.conv2d(x, w, stride, padding(pad));
}


/** A convolution with eval-mode BatchNorm folded in: kernel and per-channel bias. */
export interface FoldedConv {
  filter: tf.Tensor4D;
  bias: tf.Tensor1D;
}

/**
 * Eval-mode BatchNorm after a convolution is a per-channel scale and shift: folded into the kernel
 * (w * gamma / sqrt(var + eps)) and a bias (beta - mean * gamma / sqrt(var + eps)).
 */
export function foldBn(w: tf.Tensor4D, bn: { gamma: tf.Tensor1D; beta: tf.Tensor1D; mean: tf.Tensor1D; variance: tf.Tensor1D; eps: number }): FoldedConv {
  return tf.tidy(() => {
    const scale = bn.variance.add(bn.eps).rsqrt().mul(bn.gamma);
    return { filter: w.mul<tf.Tensor4D>(scale), bias: bn.beta.sub<tf.Tensor1D>(bn.mean.mul(scale)) };
  });
}

// The native backend's kernel for relu?(conv + bias + residual), by name: @moco/native-kernels'
// CONV_RESIDUAL_KERNEL (this library does not depend on that optional package).
export const CONV_RESIDUAL_KERNEL = 'MocoConvResidual';
// And its kernel for a whole eval-mode backbone (folded convolutions, residuals, ReLUs, max pool) and its
// average pool: @moco/native-kernels' RESNET_FEATURES_KERNEL (ops: Encoder's stepCodes).
export const RESNET_FEATURES_KERNEL = 'MocoResnetFeatures';

/**
 * Convolution, eval-mode BN (folded), an optional residual (a block's shortcut) and optional ReLU as one
 * fused convolution. Inference only: the elementwise passes over the activations of an unfused BN, add
 * and ReLU are most of a forward pass at serving sizes. The residual joins the fused kernel where the
 * backend has one for it (native); elsewhere it is added after.
 */
export function foldedConv2d(x: tf.Tensor4D, conv: FoldedConv, stride: number, pad: number, relu: boolean, residual?: tf.Tensor4D): tf.Tensor4D {
  if (residual && tf.getKernel(CONV_RESIDUAL_KERNEL, tf.getBackend())) {
    return tf.engine().runKernel(
      CONV_RESIDUAL_KERNEL,
      { x, filter: conv.filter, bias: conv.bias, residual },
      { strides: stride, pad, relu } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor4D;
  }
  const fused = (activation: 'relu' | 'linear') =>
    tf.fused.conv2d({ x, filter: conv.filter, strides: stride, pad: padding(pad), bias: conv.bias, activation });
  if (!residual) return fused(relu ? 'relu' : 'linear');
  const sum = fused('linear').add<tf.Tensor4D>(residual);
  return relu ? sum.relu() : sum;
}

/** The largest split count <= wanted that divides n, so a short last batch still runs. */
export function effectiveSplits(n: number, wanted: number): number {
  let s = Math.min(wanted, n);
  while (n % s !== 0) s--;
  return s;
}

/**
 * Per-split, per-channel means of x [N, H, W, C] as [S, C] (sample i in split i % S), by two matrix
 * products: reductions over non-trailing axes on the wasm backend transpose element by element and
 * took 80% of a training step; XNNPACK's matmul does the same sums in a few milliseconds.
 */
function splitMeans(x: tf.Tensor, s: number): tf.Tensor2D {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const rows = n / s;
  const pixels = h * w;
  // Mean over the samples of each split: [1, rows] x [rows, S*H*W*C].
  const overSamples = tf.matMul(tf.fill([1, rows], 1 / rows), x.reshape([rows, s * pixels * c]));
  // Then over the pixels of each split: a block-diagonal [S, S*H*W] averaging matrix.
  const blocks = new Float32Array(s * s * pixels);
  for (let j = 0; j < s; j++) blocks.fill(1 / pixels, j * (s * pixels + pixels), j * (s * pixels + pixels) + pixels);
  return tf.matMul(tf.tensor2d(blocks, [s, s * pixels]), overSamples.reshape([s * pixels, c]));
}

/**
 * BatchNorm with PyTorch semantics and the CIFAR demo's split statistics: sample i belongs to split
 * i % S (the demo views [N, C] as [N/S, S*C]); running statistics move by `momentum` towards each
 * split's statistics (unbiased variance) and are stored as the mean over splits. In training the
 * gradient is written out (the standard BN backward, per split) so it too reduces with matmuls.
 */
function composedBatchNorm(x: tf.Tensor4D, { gamma, beta, runningMean, runningVar }: BnTensors, mode: BnMode, s: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const grouped = [n / s, s, h * w, c];
  const perSplit = (t: tf.Tensor) => t.reshape([1, s, 1, c]);
  const train = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, g, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const mean = splitMeans(input, s);
    const centered = input.reshape(grouped).sub(perSplit(mean));
    const variance = splitMeans(centered.square().reshape([n, h, w, c]), s);
    const invStd = variance.add(mode.eps).rsqrt();
    const xhat = centered.mul(perSplit(invStd));
    if (mode.updateStats) updateRunningStats(runningMean, runningVar, mean, variance, (n / s) * h * w, mode.momentum);
    save([xhat, invStd, g]);
    return {
      value: xhat.mul(g).add(b).reshape([n, h, w, c]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, inv, gam] = saved as [tf.Tensor, tf.Tensor2D, tf.Tensor1D];
        const count = (n / s) * h * w;
        const meanDy = splitMeans(dy, s);
        const meanDyXhat = splitMeans(dy.reshape(grouped).mul(xh).reshape([n, h, w, c]), s);
        const dx = dy
          .reshape(grouped)
          .sub(perSplit(meanDy))
          .sub(xh.mul(perSplit(meanDyXhat)))
          .mul(perSplit(inv.mul(gam)));
        return [dx.reshape([n, h, w, c]), meanDyXhat.sum(0).mul(count), meanDy.sum(0).mul(count)];
      },
    };
  });
  return train(x, gamma, beta) as tf.Tensor4D;
}

/** Running statistics move by `momentum` towards the mean over splits of each split's (unbiased) statistics. */
function updateRunningStats(runningMean: tf.Variable, runningVar: tf.Variable, mean: tf.Tensor, variance: tf.Tensor, count: number, m: number): void {
  const unbiased = count > 1 ? count / (count - 1) : 1;
  runningMean.assign(runningMean.mul(1 - m).add(mean.mean(0).mul(m)));
  runningVar.assign(runningVar.mul(1 - m).add(variance.mean(0).mul(m * unbiased)));
}

// The native backend's training batch norm and its backward, by name: @moco/native-kernels'
// BATCH_NORM_TRAIN_KERNEL and BATCH_NORM_TRAIN_GRAD_KERNEL.
export const BATCH_NORM_TRAIN_KERNEL = 'MocoBatchNormTrain';
export const BATCH_NORM_TRAIN_GRAD_KERNEL = 'MocoBatchNormTrainGrad';

/**
 * The same batch norm, residual and ReLU as one kernel forward and one backward (native backend): three
 * passes over the activations each way instead of some fifteen tensor ops, and nothing kept for the
 * backward but the input and the output (x-hat is recomputed from the input).
 */
function fusedBatchNorm(x: tf.Tensor4D, { gamma, beta, runningMean, runningVar }: BnTensors, mode: BnMode, s: number, post: BnPost): tf.Tensor4D {
  const [n, h, w] = x.shape;
  const relu = post.relu ?? false;
  const hasResidual = post.residual !== undefined;
  const train = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.at(-1) as tf.GradSaveFunc;
    const [input, g, b, residual] = args.slice(0, -1) as tf.Tensor[];
    const inputs: tf.NamedTensorMap = { x: input!, gamma: g!, beta: b! };
    if (residual) inputs.residual = residual;
    const [y, mean, variance] = tf.engine().runKernel(
      BATCH_NORM_TRAIN_KERNEL, inputs, { splits: s, eps: mode.eps, relu } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
    if (mode.updateStats) updateRunningStats(runningMean, runningVar, mean!, variance!, (n / s) * h * w, mode.momentum);
    save(relu ? [input!, g!, mean!, variance!, y!] : [input!, g!, mean!, variance!]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, gs, ms, vs, ys] = saved;
        const gradInputs: tf.NamedTensorMap = { dy, x: xs!, gamma: gs!, mean: ms!, variance: vs! };
        if (ys) gradInputs.y = ys;
        return tf.engine().runKernel(
          BATCH_NORM_TRAIN_GRAD_KERNEL, gradInputs, { splits: s, eps: mode.eps, residual: hasResidual } as unknown as tf.NamedAttrMap,
        ) as tf.Tensor[];
      },
    };
  });
  return (hasResidual ? train(x, gamma, beta, post.residual!) : train(x, gamma, beta)) as tf.Tensor4D;
}

/** A batch norm's parameters and running statistics. */
interface BnTensors {
  gamma: tf.Tensor1D;
  beta: tf.Tensor1D;
  runningMean: tf.Variable;
  runningVar: tf.Variable;
}

/** What follows a training-mode batch norm in a ResNet: a block's shortcut added, then ReLU. */
export interface BnPost {
  residual?: tf.Tensor4D;
  relu?: boolean;
}

/**
 * Training-mode BatchNorm (see composedBatchNorm for the semantics), then `post`: relu?(bn(x) +
 * residual). One fused kernel where the backend has it (native), tensor ops elsewhere.
 */
export function batchNorm(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  runningMean: tf.Variable,
  runningVar: tf.Variable,
  mode: BnMode,
  post: BnPost = {},
): tf.Tensor4D {
  const s = effectiveSplits(x.shape[0], mode.splits);
  const tensors = { gamma, beta, runningMean, runningVar };
  if (tf.getKernel(BATCH_NORM_TRAIN_KERNEL, tf.getBackend())) return fusedBatchNorm(x, tensors, mode, s, post);
  let z = composedBatchNorm(x, tensors, mode, s);
  if (post.residual) z = z.add(post.residual);
  return post.relu ? z.relu() : z;
}

export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return tf.matMul(x, w).add(b);
}

/** L2-normalise rows, as torch.nn.functional.normalize (eps 1e-12). */
export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return x.div(x.square().sum(1, true).sqrt().maximum(1e-12));
}
