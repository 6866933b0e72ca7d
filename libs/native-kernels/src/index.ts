// Backend 'native': the tfjs cpu backend (pure JS) with its convolutions and matrix products replaced by
// oneDNN (libdnnl) primitives from an optional Node-API addon. Everything else is the cpu backend's code.
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { type ArenaAddon, holdArenaValues } from './arena-values.js';

export const NATIVE_BACKEND = 'native';
/**
 * Inference kernel of this backend only: relu?(conv2d(x, filter) + bias + residual), a ResNet block's
 * last convolution with its shortcut (inputs x, filter, bias, residual; attrs strides, pad, relu).
 * libs/moco calls it by this name when the active backend has it (it does not depend on this package).
 */
export const CONV_RESIDUAL_KERNEL = 'MocoConvResidual';
/**
 * Training-mode split batch norm of this backend only (NHWC; sample i in split i % splits), with an
 * optional residual added and ReLU after: inputs x, gamma, beta, residual?; attrs splits, eps, relu;
 * outputs y, mean [splits, C], biased variance [splits, C]. libs/moco's batchNorm calls it by name.
 */
export const BATCH_NORM_TRAIN_KERNEL = 'MocoBatchNormTrain';
/**
 * Its backward: inputs dy, x, gamma, mean, variance, y? (given when the forward had a ReLU); attrs splits,
 * eps, residual (whether to return the residual's gradient); outputs dx, dgamma, dbeta, dresidual?.
 */
export const BATCH_NORM_TRAIN_GRAD_KERNEL = 'MocoBatchNormTrainGrad';
/**
 * torch.optim.SGD's update of one parameter in one pass: inputs p, grad, buf? (the momentum buffer,
 * absent on the first step); attrs lr, momentum, weightDecay; outputs p', buf'.
 */
export const SGD_STEP_KERNEL = 'MocoSgdStep';
/** The key encoder's momentum update of one parameter: inputs k, q; attr m; output k * m + q * (1 - m). */
export const EMA_UPDATE_KERNEL = 'MocoEmaUpdate';
/**
 * Inference kernel of this backend only: a ResNet backbone with BN folded in, run as one native call, and
 * its global average pool. Inputs x (NHWC) and, per convolution in op order, `filter{i}` and `bias{i}`;
 * attr `ops`: six numbers per op as NativeAddon.resnetFeatures takes them, op i making value i + 1 from
 * value `src` (value 0: x). Output [N, channels of the last value]. libs/moco's Encoder calls it by name.
 */
export const RESNET_FEATURES_KERNEL = 'MocoResnetFeatures';

export interface NativeAddon extends ArenaAddon {
  conv2dForward(
    x: Float32Array, xShape: number[], filter: Float32Array, filterShape: number[], yShape: number[],
    strides: number[], pads: number[], dilations: number[],
  ): Float32Array;
  /** Inference conv2d + optional per-output-channel bias (length outChannels) + optional residual (y's shape) + optional ReLU. */
  conv2dFused(
    x: Float32Array, xShape: number[], filter: Float32Array, filterShape: number[], yShape: number[],
    strides: number[], pads: number[], dilations: number[], bias: Float32Array | null, relu: boolean,
    residual?: Float32Array,
  ): Float32Array;
  conv2dBackwardData(
    dy: Float32Array, yShape: number[], filter: Float32Array, filterShape: number[], xShape: number[],
    strides: number[], pads: number[], dilations: number[],
  ): Float32Array;
  conv2dBackwardWeights(
    x: Float32Array, xShape: number[], dy: Float32Array, yShape: number[], filterShape: number[],
    strides: number[], pads: number[], dilations: number[],
  ): Float32Array;
  matmul(
    a: Float32Array, b: Float32Array, batchA: number, batchB: number, m: number, k: number, n: number,
    transposeA: boolean, transposeB: boolean,
  ): Float32Array;
  /** op: 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min, 6 squared difference; numpy broadcasting. */
  binary(op: number, a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], outShape: number[]): Float32Array;
  /** op: 0 relu, 1 step (alpha), 2 square, 3 rsqrt, 4 neg, 5 sqrt, 6 exp. */
  unary(op: number, x: Float32Array, alpha?: number): Float32Array;
  /** Sum (mean when `mean`) over `axes`; the reduced axes are dropped from the result. */
  reduce(x: Float32Array, shape: number[], axes: number[], mean: boolean): Float32Array;
  /** Split batch norm, training mode (BATCH_NORM_TRAIN_KERNEL): [y, mean [S, C], biased variance [S, C]]. */
  batchNormTrain(
    x: Float32Array, shape: number[], gamma: Float32Array, beta: Float32Array, residual: Float32Array | null,
    splits: number, eps: number, relu: boolean,
  ): [Float32Array, Float32Array, Float32Array];
  /** Its backward: [dx, dgamma, dbeta] and dresidual when `wantResidual`; `y` given when the forward had a ReLU. */
  batchNormTrainGrad(
    dy: Float32Array, x: Float32Array, shape: number[], y: Float32Array | null, gamma: Float32Array,
    mean: Float32Array, variance: Float32Array, splits: number, eps: number, wantResidual: boolean,
  ): Float32Array[];
  /** SGD_STEP_KERNEL: [p', buf']. */
  sgdStep(p: Float32Array, grad: Float32Array, buf: Float32Array | null, lr: number, momentum: number, weightDecay: number): [Float32Array, Float32Array];
  /** k * m + q * (1 - m). */
  emaUpdate(k: Float32Array, q: Float32Array, m: number): Float32Array;
  /**
   * RESNET_FEATURES_KERNEL: ops as [kind (0 conv, 1 max pool 3x3/2 pad 1), src, residual (-1 none), stride,
   * pad, relu] per op; weights [filter, bias, ...] per convolution; the last value averaged, [N, C].
   */
  resnetFeatures(x: Float32Array, xShape: number[], ops: number[], weights: Float32Array[], filterShapes: number[][]): Float32Array;
  /** OpenMP threads for kernels called from this (JS) thread; returns the count now in effect. */
  setNumThreads(n: number): number;
  info(): {
    onednn: string; cpuRuntime: string; cachedPrimitives: number; threads: number;
    /** Cached inference convolutions (this JS thread) that run Winograd, which needs AVX-512. */
    winogradPrimitives: number;
    /**
     * RESNET_FEATURES_KERNEL plans compiled on this JS thread (one per network and input shape), their
     * convolutions that run Winograd, those of them run over the batch in chunks (small-batch F(2x2, 3x3)),
     * and the scratch bytes their activations live in.
     */
    resnetPlans: { plans: number; winogradConvs: number; chunkedConvs: number; scratchBytes: number };
    /** This JS thread's output arena: chunks made, their bytes, bytes and blocks in use, the most bytes ever in use. */
    arena: { chunks: number; reservedBytes: number; usedBytes: number; peakUsedBytes: number; blocks: number };
  };
}

/**
 * OpenMP threads for oneDNN and the addon's loops: MOCO_NATIVE_THREADS, else OMP_NUM_THREADS, else every
 * core (`os.availableParallelism()`), as PyTorch does.
 */
export function nativeThreads(env: NodeJS.ProcessEnv = process.env): number {
  for (const v of [env.MOCO_NATIVE_THREADS, env.OMP_NUM_THREADS]) {
    const n = Number.parseInt(v ?? '', 10);
    if (n >= 1) return n;
  }
  return os.availableParallelism();
}

const ADDON_PATH = path.join(path.dirname(path.dirname(fileURLToPath(import.meta.url))), 'build', 'Release', 'moco_native.node');

let loaded: { addon?: NativeAddon; error?: string } | undefined;

/** The addon, or undefined with the reason in `nativeUnavailableReason()` (not built, libdnnl missing). */
export function loadAddon(): NativeAddon | undefined {
  if (!loaded) {
    // Threads: see nativeThreads(). libgomp reads OMP_NUM_THREADS once, when the addon loads it, and only
    // from the real process environment (a worker_thread's process.env is a copy), so the count is also
    // set explicitly, per calling thread, with setNumThreads.
    const threads = nativeThreads();
    process.env.OMP_NUM_THREADS ??= String(threads);
    // Idle OpenMP threads spin about a millisecond (libgomp counts ~100,000 spins per ms) before they
    // sleep: long enough to bridge the JS between two kernels, short enough to give the core back during
    // data loading or a pause. Sleeping at once (OMP_WAIT_POLICY=PASSIVE, the default here until the
    // output arena took V8's GC threads off the cores) cost a wake-up per parallel region: width 16 on
    // 2 cores, embed batch 8 took 5.4 ms a call against 3.9 ms, a training step at batch 128 283 ms
    // against 252 ms (medians of 8). libgomp spins less by itself when threads outnumber the free cores.
    // An explicit OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
    if (process.env.OMP_WAIT_POLICY === undefined) process.env.GOMP_SPINCOUNT ??= '100000';
    try {
      const addon = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
      addon.setNumThreads(threads);
      loaded = { addon };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      loaded = {
        error: `cannot load ${ADDON_PATH} (${message.split('\n')[0]})`,
      };
    }
  }
  return loaded.addon;
}

/** How to get the addon built, for messages. */
export const NATIVE_BUILD_HINT = 'apt-get install libdnnl-dev g++ make && npm rebuild @moco/native-kernels';

/** Why the addon cannot load (without the build hint), or undefined when it loads. */
export function nativeUnavailableReason(): string | undefined {
  loadAddon();
  return loaded?.error;
}

type Info = tf.TensorInfo;

function f32(backend: MathBackendCPU, t: Info): Float32Array {
  const values = backend.data.get(t.dataId).values;
  return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
}

function pads(p: { top: number; bottom: number; left: number; right: number }): number[] {
  return [p.top, p.bottom, p.left, p.right];
}

/** Copies x[begin : begin + size] (any rank) with one TypedArray.set per contiguous run. */
function sliceValues(values: tf.backend_util.TypedArray, shape: number[], begin: number[], size: number[]): tf.backend_util.TypedArray {
  const r = shape.length;
  const out = new (values.constructor as Float32ArrayConstructor)(tf.util.sizeFromShape(size));
  if (out.length === 0) return out;
  const strides = tf.util.computeStrides(shape).concat([1]);
  // The smallest j such that every axis after j is taken whole: runs of size[j] * strides[j] elements.
  let j = r - 1;
  while (j > 0 && begin[j] === 0 && size[j] === shape[j]) j--;
  const run = r === 0 ? 1 : size[j]! * strides[j]!;
  const idx = new Array<number>(j).fill(0);
  let base = 0;
  for (let a = 0; a < r; a++) base += begin[a]! * strides[a]!;
  let off = base;
  for (let o = 0; o < out.length; o += run) {
    out.set((values as Float32Array).subarray(off, off + run), o);
    for (let d = j - 1; d >= 0; d--) {
      if (++idx[d]! < size[d]!) {
        off += strides[d]!;
        break;
      }
      off -= strides[d]! * (size[d]! - 1);
      idx[d] = 0;
    }
  }
  return out;
}

function cpuKernel(name: string): tf.KernelFunc {
  const k = tf.getKernel(name, 'cpu');
  if (!k) throw new Error(`cpu kernel ${name} missing`);
  return k.kernelFunc;
}

function makeKernels(addon: NativeAddon): Array<[string, tf.KernelFunc]> {
  const conv2d: tf.KernelFunc = (args) => {
    const { x, filter } = args.inputs as { x: Info; filter: Info };
    const { strides, pad, dataFormat, dilations, dimRoundingMode } = args.attrs as unknown as tf.Conv2DAttrs;
    const backend = args.backend as MathBackendCPU;
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
      strides, dilations, pad, dimRoundingMode, false, tf.backend_util.convertConv2DDataFormat(dataFormat),
    );
    if (info.dataFormat !== 'channelsLast' || x.dtype !== 'float32') return cpuKernel(tf.Conv2D)(args);
    const y = addon.conv2dForward(
      f32(backend, x), x.shape, f32(backend, filter), filter.shape, info.outShape,
      [info.strideHeight, info.strideWidth], pads(info.padInfo), [info.dilationHeight, info.dilationWidth],
    );
    return backend.makeTensorInfo(info.outShape, 'float32', y);
  };
  /** One oneDNN inference convolution with optional bias, residual and ReLU (FusedConv2D and CONV_RESIDUAL_KERNEL). */
  const runFused = (
    backend: MathBackendCPU, x: Info, filter: Info, info: tf.backend_util.Conv2DInfo, bias: Info | undefined, relu: boolean, residual?: Info,
  ): Info => {
    const y = addon.conv2dFused(
      f32(backend, x), x.shape, f32(backend, filter), filter.shape, info.outShape,
      [info.strideHeight, info.strideWidth], pads(info.padInfo), [info.dilationHeight, info.dilationWidth],
      bias != null ? f32(backend, bias) : null, relu, residual && f32(backend, residual),
    );
    return backend.makeTensorInfo(info.outShape, 'float32', y);
  };
  // tf.fused.conv2d: bias (per output channel) and activation 'linear' / 'relu' run as one oneDNN
  // inference convolution; other activations, PReLU weights, broadcast biases and NCHW use the cpu kernel.
  const fusedConv2d: tf.KernelFunc = (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as { x: Info; filter: Info; bias?: Info; preluActivationWeights?: Info };
    const { strides, pad, dataFormat, dilations, dimRoundingMode, activation } = args.attrs as unknown as tf.FusedConv2DAttrs;
    const backend = args.backend as MathBackendCPU;
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
      strides, dilations, pad, dimRoundingMode, false, tf.backend_util.convertConv2DDataFormat(dataFormat),
    );
    const act = activation ?? 'linear';
    const perChannelBias = (b: Info): boolean =>
      b.dtype === 'float32' && b.shape.length >= 1 && b.shape.length <= 4 &&
      b.shape.every((d, i) => (i === b.shape.length - 1 ? d === info.outChannels : d === 1));
    if (
      info.dataFormat !== 'channelsLast' || x.dtype !== 'float32' || filter.dtype !== 'float32' ||
      preluActivationWeights != null || (act !== 'linear' && act !== 'relu') || (bias != null && !perChannelBias(bias))
    ) {
      return cpuKernel(tf.FusedConv2D)(args);
    }
    return runFused(backend, x, filter, info, bias, act === 'relu');
  };
  const convResidual: tf.KernelFunc = (args) => {
    const { x, filter, bias, residual } = args.inputs as { x: Info; filter: Info; bias: Info; residual: Info };
    const { strides, pad, relu } = args.attrs as unknown as { strides: number; pad: number; relu: boolean };
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number], filter.shape as [number, number, number, number], strides, 1, pad,
    );
    return runFused(args.backend as MathBackendCPU, x, filter, info, bias, relu, residual);
  };
  const conv2dBackpropInput: tf.KernelFunc = (args) => {
    const { dy, filter } = args.inputs as { dy: Info; filter: Info };
    const { inputShape, strides, pad, dataFormat, dimRoundingMode } = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    const backend = args.backend as MathBackendCPU;
    const info = tf.backend_util.computeConv2DInfo(
      inputShape, filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode, false,
      tf.backend_util.convertConv2DDataFormat(dataFormat),
    );
    if (info.dataFormat !== 'channelsLast' || dy.dtype !== 'float32') return cpuKernel(tf.Conv2DBackpropInput)(args);
    const dx = addon.conv2dBackwardData(
      f32(backend, dy), dy.shape, f32(backend, filter), filter.shape, info.inShape,
      [info.strideHeight, info.strideWidth], pads(info.padInfo), [1, 1],
    );
    return backend.makeTensorInfo(info.inShape, 'float32', dx);
  };
  const conv2dBackpropFilter: tf.KernelFunc = (args) => {
    const { x, dy } = args.inputs as { x: Info; dy: Info };
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    const backend = args.backend as MathBackendCPU;
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false,
      tf.backend_util.convertConv2DDataFormat(dataFormat),
    );
    if (info.dataFormat !== 'channelsLast' || x.dtype !== 'float32') return cpuKernel(tf.Conv2DBackpropFilter)(args);
    const dw = addon.conv2dBackwardWeights(
      f32(backend, x), x.shape, f32(backend, dy), dy.shape, info.filterShape,
      [info.strideHeight, info.strideWidth], pads(info.padInfo), [1, 1],
    );
    return backend.makeTensorInfo(info.filterShape, 'float32', dw);
  };
  const batchMatMul: tf.KernelFunc = (args) => {
    const { a, b } = args.inputs as { a: Info; b: Info };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    const backend = args.backend as MathBackendCPU;
    const ra = a.shape.length;
    const rb = b.shape.length;
    const m = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
    const k = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
    const n = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
    const kb = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const batchA = tf.util.sizeFromShape(outerA);
    const batchB = tf.util.sizeFromShape(outerB);
    const fallback = k !== kb || a.dtype !== 'float32' || b.dtype !== 'float32' || (batchA !== batchB && batchA !== 1 && batchB !== 1);
    if (fallback) return cpuKernel(tf.BatchMatMul)(args);
    const outShape = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB).concat([m, n]);
    const c = addon.matmul(f32(backend, a), f32(backend, b), batchA, batchB, m, k, n, transposeA, transposeB);
    return backend.makeTensorInfo(outShape, 'float32', c);
  };
  const binary = (name: string, op: number): [string, tf.KernelFunc] => [
    name,
    (args) => {
      const { a, b } = args.inputs as { a: Info; b: Info };
      if (a.dtype !== 'float32' || b.dtype !== 'float32') return cpuKernel(name)(args);
      const backend = args.backend as MathBackendCPU;
      const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
      return backend.makeTensorInfo(outShape, 'float32', addon.binary(op, f32(backend, a), a.shape, f32(backend, b), b.shape, outShape));
    },
  ];
  const unary = (name: string, op: number): [string, tf.KernelFunc] => [
    name,
    (args) => {
      const { x } = args.inputs as { x: Info };
      if (x.dtype !== 'float32') return cpuKernel(name)(args);
      const backend = args.backend as MathBackendCPU;
      const alpha = (args.attrs as { alpha?: number } | undefined)?.alpha ?? 0;
      return backend.makeTensorInfo(x.shape, 'float32', addon.unary(op, f32(backend, x), alpha));
    },
  ];
  const reduce = (name: string, mean: boolean): [string, tf.KernelFunc] => [
    name,
    (args) => {
      const { x } = args.inputs as { x: Info };
      if (x.dtype !== 'float32') return cpuKernel(name)(args);
      const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
      const backend = args.backend as MathBackendCPU;
      const axes = tf.util.parseAxisParam(axis, x.shape);
      const kept = x.shape.filter((_, i) => !axes.includes(i));
      const outShape = keepDims ? tf.backend_util.expandShapeToKeepDim(kept, axes) : kept;
      return backend.makeTensorInfo(outShape, 'float32', addon.reduce(f32(backend, x), x.shape, axes, mean));
    },
  ];
  const slice: tf.KernelFunc = (args) => {
    const { x } = args.inputs as { x: Info };
    const { begin, size } = args.attrs as unknown as tf.SliceAttrs;
    const backend = args.backend as MathBackendCPU;
    if (x.dtype === 'string' || x.dtype === 'complex64') return cpuKernel(tf.Slice)(args);
    const [b, sz] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size) as [number[], number[]];
    const values = backend.data.get(x.dataId).values as tf.backend_util.TypedArray;
    return backend.makeTensorInfo(sz, x.dtype, sliceValues(values, x.shape, b, sz));
  };
  const splitV: tf.KernelFunc = (args) => {
    const { x } = args.inputs as { x: Info };
    const { numOrSizeSplits, axis } = args.attrs as unknown as tf.SplitVAttrs;
    const backend = args.backend as MathBackendCPU;
    if (x.dtype === 'string' || x.dtype === 'complex64') return cpuKernel(tf.SplitV)(args);
    const $axis = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, $axis);
    const values = backend.data.get(x.dataId).values as tf.backend_util.TypedArray;
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((s) => {
      const size = [...x.shape];
      size[$axis] = s;
      const out = backend.makeTensorInfo(size, x.dtype, sliceValues(values, x.shape, [...begin], size));
      begin[$axis]! += s;
      return out;
    });
  };
  // Gather (shuffle BN's permutations): one TypedArray.set per gathered slice instead of the cpu
  // kernel's per-element index arithmetic. batchDims > 0 and out-of-range indices (the cpu kernel
  // throws its error) go to the cpu kernel.
  const gatherV2: tf.KernelFunc = (args) => {
    const { x, indices } = args.inputs as { x: Info; indices: Info };
    const { axis, batchDims } = args.attrs as unknown as tf.GatherV2Attrs;
    if ((batchDims ?? 0) !== 0 || x.dtype === 'string' || x.dtype === 'complex64') return cpuKernel(tf.GatherV2)(args);
    const backend = args.backend as MathBackendCPU;
    const a = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const idx = backend.data.get(indices.dataId).values as tf.backend_util.TypedArray;
    const dim = x.shape[a]!;
    for (let i = 0; i < idx.length; i++) if (!(idx[i]! >= 0 && idx[i]! < dim)) return cpuKernel(tf.GatherV2)(args);
    const outer = tf.util.sizeFromShape(x.shape.slice(0, a));
    const inner = tf.util.sizeFromShape(x.shape.slice(a + 1));
    const values = backend.data.get(x.dataId).values as Float32Array;
    const out = new (values.constructor as Float32ArrayConstructor)(outer * idx.length * inner);
    for (let o = 0, dst = 0; o < outer; o++) {
      for (let j = 0; j < idx.length; j++, dst += inner) {
        const src = (o * dim + idx[j]!) * inner;
        if (inner < 16) for (let k = 0; k < inner; k++) out[dst + k] = values[src + k]!;
        else out.set(values.subarray(src, src + inner), dst);
      }
    }
    const outShape = [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)];
    return backend.makeTensorInfo(outShape, x.dtype, out);
  };
  // Concat, 2-D Transpose, and Max / ArgMax over the last axis: the cpu backend's general JS kernels took
  // 15-55 ms each on the [128, 4097] logits and the [128, 4096] queue (about 150 ms of a width-16 step);
  // these are plain loops over contiguous runs. Other cases go to the cpu kernels.
  const concat: tf.KernelFunc = (args) => {
    const inputs = args.inputs as unknown as Info[];
    const { axis } = args.attrs as unknown as tf.ConcatAttrs;
    const backend = args.backend as MathBackendCPU;
    if (inputs.length === 0 || inputs.some((t) => t.dtype !== 'float32')) return cpuKernel(tf.Concat)(args);
    const $axis = tf.util.parseAxisParam(axis, inputs[0]!.shape)[0]!;
    const outShape = tf.backend_util.computeOutShape(inputs.map((t) => t.shape), $axis);
    const outer = tf.util.sizeFromShape(outShape.slice(0, $axis));
    const runs = inputs.map((t) => tf.util.sizeFromShape(t.shape.slice($axis)));
    const row = runs.reduce((a, b) => a + b, 0);
    const out = new Float32Array(outer * row);
    inputs.forEach((t, i) => {
      const values = f32(backend, t);
      const run = runs[i]!;
      let dst = runs.slice(0, i).reduce((a, b) => a + b, 0);
      for (let o = 0, src = 0; o < outer; o++, src += run, dst += row) out.set(values.subarray(src, src + run), dst);
    });
    return backend.makeTensorInfo(outShape, 'float32', out);
  };
  const transpose: tf.KernelFunc = (args) => {
    const { x } = args.inputs as { x: Info };
    const { perm } = args.attrs as unknown as tf.TransposeAttrs;
    if (x.dtype !== 'float32' || x.shape.length !== 2 || perm[0] !== 1) return cpuKernel(tf.Transpose)(args);
    const backend = args.backend as MathBackendCPU;
    const [rows, cols] = x.shape as [number, number];
    const values = f32(backend, x);
    const out = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c]!;
    return backend.makeTensorInfo([cols, rows], 'float32', out);
  };
  /** Max (values) or ArgMax (int32 indices, the first of equal maxima) over the last axis. */
  const lastAxisMax = (name: string, arg: boolean): [string, tf.KernelFunc] => [
    name,
    (args) => {
      const { x } = args.inputs as { x: Info };
      const attrs = args.attrs as unknown as Partial<tf.MaxAttrs & tf.ArgMaxAttrs>;
      const axes = tf.util.parseAxisParam(arg ? attrs.axis! : attrs.reductionIndices!, x.shape);
      const last = x.shape.length - 1;
      if (x.dtype !== 'float32' || axes.length !== 1 || axes[0] !== last || x.shape[last] === 0) return cpuKernel(name)(args);
      const backend = args.backend as MathBackendCPU;
      const values = f32(backend, x);
      const n = x.shape[last]!;
      const rows = values.length / n;
      const out = arg ? new Int32Array(rows) : new Float32Array(rows);
      for (let r = 0; r < rows; r++) {
        const base = r * n;
        let best = values[base]!;
        let at = 0;
        // As the cpu kernels: for Max a NaN wins; ArgMax compares with > only (a NaN is never taken).
        for (let i = 1; i < n && best === best; i++) {
          const v = values[base + i]!;
          if (v > best || (!arg && v !== v)) {
            best = v;
            at = i;
          }
        }
        out[r] = arg ? at : best;
      }
      const kept = x.shape.slice(0, last);
      const outShape = attrs.keepDims && !arg ? [...kept, 1] : kept;
      return backend.makeTensorInfo(outShape, arg ? 'int32' : 'float32', out);
    },
  ];
  const batchNormTrain: tf.KernelFunc = (args) => {
    const { x, gamma, beta, residual } = args.inputs as { x: Info; gamma: Info; beta: Info; residual?: Info };
    const { splits, eps, relu } = args.attrs as unknown as { splits: number; eps: number; relu: boolean };
    const backend = args.backend as MathBackendCPU;
    const [y, mean, variance] = addon.batchNormTrain(
      f32(backend, x), x.shape, f32(backend, gamma), f32(backend, beta), residual ? f32(backend, residual) : null, splits, eps, relu,
    );
    const c = x.shape[3]!;
    return [
      backend.makeTensorInfo(x.shape, 'float32', y),
      backend.makeTensorInfo([splits, c], 'float32', mean),
      backend.makeTensorInfo([splits, c], 'float32', variance),
    ];
  };
  const batchNormTrainGrad: tf.KernelFunc = (args) => {
    const { dy, x, gamma, mean, variance, y } = args.inputs as { dy: Info; x: Info; gamma: Info; mean: Info; variance: Info; y?: Info };
    const { splits, eps, residual } = args.attrs as unknown as { splits: number; eps: number; residual: boolean };
    const backend = args.backend as MathBackendCPU;
    const [dx, dgamma, dbeta, dres] = addon.batchNormTrainGrad(
      f32(backend, dy), f32(backend, x), x.shape, y ? f32(backend, y) : null, f32(backend, gamma),
      f32(backend, mean), f32(backend, variance), splits, eps, residual,
    );
    const outs = [
      backend.makeTensorInfo(x.shape, 'float32', dx!),
      backend.makeTensorInfo(gamma.shape, 'float32', dgamma!),
      backend.makeTensorInfo(gamma.shape, 'float32', dbeta!),
    ];
    if (dres) outs.push(backend.makeTensorInfo(x.shape, 'float32', dres));
    return outs;
  };
  const sgdStep: tf.KernelFunc = (args) => {
    const { p, grad, buf } = args.inputs as { p: Info; grad: Info; buf?: Info };
    const { lr, momentum, weightDecay } = args.attrs as unknown as { lr: number; momentum: number; weightDecay: number };
    const backend = args.backend as MathBackendCPU;
    const [next, nextBuf] = addon.sgdStep(f32(backend, p), f32(backend, grad), buf ? f32(backend, buf) : null, lr, momentum, weightDecay);
    return [backend.makeTensorInfo(p.shape, 'float32', next), backend.makeTensorInfo(p.shape, 'float32', nextBuf)];
  };
  const emaUpdate: tf.KernelFunc = (args) => {
    const { k, q } = args.inputs as { k: Info; q: Info };
    const { m } = args.attrs as unknown as { m: number };
    const backend = args.backend as MathBackendCPU;
    return backend.makeTensorInfo(k.shape, 'float32', addon.emaUpdate(f32(backend, k), f32(backend, q), m));
  };
  const resnetFeatures: tf.KernelFunc = (args) => {
    const { x, ...named } = args.inputs as Record<string, Info>;
    const { ops } = args.attrs as unknown as { ops: number[] };
    const backend = args.backend as MathBackendCPU;
    const weights: Float32Array[] = [];
    const filterShapes: number[][] = [];
    for (let i = 0; named[`filter${i}`]; i++) {
      const filter = named[`filter${i}`]!;
      filterShapes.push(filter.shape);
      weights.push(f32(backend, filter), f32(backend, named[`bias${i}`]!));
    }
    const features = addon.resnetFeatures(f32(backend, x!), x!.shape, ops, weights, filterShapes);
    const n = x!.shape[0]!;
    return backend.makeTensorInfo([n, n === 0 ? 0 : features.length / n], 'float32', features);
  };
  return [
    reduce(tf.Sum, false),
    reduce(tf.Mean, true),
    [tf.Slice, slice],
    [tf.SplitV, splitV],
    binary(tf.Add, 0),
    binary(tf.Sub, 1),
    binary(tf.Multiply, 2),
    binary(tf.RealDiv, 3),
    binary(tf.Maximum, 4),
    binary(tf.Minimum, 5),
    binary(tf.SquaredDifference, 6),
    unary(tf.Relu, 0),
    unary(tf.Step, 1),
    unary(tf.Square, 2),
    unary(tf.Rsqrt, 3),
    unary(tf.Neg, 4),
    unary(tf.Sqrt, 5),
    unary(tf.Exp, 6),
    [tf.GatherV2, gatherV2],
    [tf.Concat, concat],
    [tf.Transpose, transpose],
    lastAxisMax(tf.Max, false),
    lastAxisMax(tf.ArgMax, true),
    [tf.Conv2D, conv2d],
    [tf.FusedConv2D, fusedConv2d],
    [CONV_RESIDUAL_KERNEL, convResidual],
    [BATCH_NORM_TRAIN_KERNEL, batchNormTrain],
    [BATCH_NORM_TRAIN_GRAD_KERNEL, batchNormTrainGrad],
    [SGD_STEP_KERNEL, sgdStep],
    [EMA_UPDATE_KERNEL, emaUpdate],
    [RESNET_FEATURES_KERNEL, resnetFeatures],
    [tf.Conv2DBackpropInput, conv2dBackpropInput],
    [tf.Conv2DBackpropFilter, conv2dBackpropFilter],
    [tf.BatchMatMul, batchMatMul],
  ];
}

let registered = false;

/**
 * Registers backend 'native' (a MathBackendCPU whose kernel registry is the cpu backend's, with the
 * oneDNN kernels on top). Throws with the reason when the addon cannot load; safe to call again.
 */
export function registerNativeBackend(): { detail: string } {
  const addon = loadAddon();
  if (!addon) throw new Error(`${nativeUnavailableReason()}; build it with '${NATIVE_BUILD_HINT}'`);
  // This JS thread may not be the one that loaded the addon (worker_threads): set its OpenMP threads too.
  addon.setNumThreads(nativeThreads());
  const { onednn, cpuRuntime, threads } = addon.info();
  const detail = `native (tfjs cpu + oneDNN ${onednn} ${cpuRuntime} conv/matmul, ${threads} thread${threads === 1 ? '' : 's'})`;
  if (registered) return { detail };
  const cpuFactory = tf.findBackendFactory('cpu');
  if (!cpuFactory) throw new Error(`the tfjs cpu backend is not registered`);
  tf.registerBackend(NATIVE_BACKEND, () => {
    const backend = cpuFactory() as MathBackendCPU;
    holdArenaValues(backend, addon);
    return backend;
  }, 0);
  // MOCO_NATIVE_DISABLE=Conv2D,Add,...: keep the cpu backend's kernel for these (debugging).
  const disabled = new Set((process.env.MOCO_NATIVE_DISABLE ?? '').split(',').filter(Boolean));
  const overrides = new Map(makeKernels(addon).filter(([name]) => !disabled.has(name)));
  for (const kernel of tf.getKernelsForBackend('cpu')) {
    if (tf.getKernel(kernel.kernelName, NATIVE_BACKEND)) continue;
    const kernelFunc = overrides.get(kernel.kernelName) ?? kernel.kernelFunc;
    tf.registerKernel({ ...kernel, backendName: NATIVE_BACKEND, kernelFunc });
  }
  // Kernels the cpu backend does not have (CONV_RESIDUAL_KERNEL, the batch-norm and optimiser passes).
  for (const [kernelName, kernelFunc] of overrides) {
    if (!tf.getKernel(kernelName, NATIVE_BACKEND)) tf.registerKernel({ kernelName, backendName: NATIVE_BACKEND, kernelFunc });
  }
  registered = true;
  return { detail };
}
