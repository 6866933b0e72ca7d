// The wasm package registers its own kernels on import; they must exist before we add to or replace them.
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import {
  backend_util,
  BatchMatMul,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  getKernel,
  MaxPoolGrad,
  registerKernel,
  Reshape,
  Slice,
  Transpose,
  UnsortedSegmentSum,
  unregisterKernel,
  util,
} from '../tf.js';
import type {
  BatchMatMulAttrs,
  Conv2DBackpropFilterAttrs,
  Conv2DBackpropInputAttrs,
  KernelConfig,
  KernelFunc,
  MaxPoolGradAttrs,
  NamedAttrMap,
  NamedTensorInfoMap,
  TensorInfo,
  UnsortedSegmentSumAttrs,
} from '../tf.js';

function wasmKernel(kernelName: string): KernelConfig {
  const kernel = getKernel(kernelName, 'wasm');
  if (kernel === undefined) throw new Error(`Kernel '${kernelName}' not registered for backend 'wasm'`);
  return kernel;
}

/**
 * Intermediates of a composite kernel. Registered wasm kernels are called directly, as the wasm
 * backend's own composite kernels do: inside a kernelFunc the engine neither records a tape nor
 * tracks tensors, so everything made here is freed explicitly.
 */
class Scratch {
  private readonly made: TensorInfo[] = [];

  constructor(readonly backend: BackendWasm) {}

  run(kernelName: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
    return this.adopt(wasmKernel(kernelName).kernelFunc({ inputs, backend: this.backend, attrs }) as TensorInfo);
  }

  adopt(t: TensorInfo): TensorInfo {
    this.made.push(t);
    return t;
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run(Reshape, { x }, { shape });
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.run(Transpose, { x }, { perm });
  }

  disposeAllBut(result: TensorInfo | undefined): void {
    for (const t of this.made) if (t !== result) this.backend.disposeData(t.dataId);
  }
}

/** Runs `body`, freeing its intermediates (all but the result) on success and on error. */
function composite(backend: unknown, body: (s: Scratch) => TensorInfo): TensorInfo {
  const scratch = new Scratch(backend as BackendWasm);
  let result: TensorInfo | undefined;
  try {
    result = body(scratch);
    return result;
  } finally {
    scratch.disposeAllBut(result);
  }
}

/**
 * [b, r, c] -> [b, c, r]. The wasm Transpose kernel copies element by element in output order, so
 * swapping the two innermost axes of a large tensor reads with a big power-of-two stride that
 * thrashes the cache. Going through [b, r/16, c, 16] keeps one pass within cache-sized blocks and
 * the other on contiguous runs: 5-20x faster from about 100k elements on.
 */
function swapInnerAxes(s: Scratch, x: TensorInfo, [b, r, c]: [number, number, number]): TensorInfo {
  const block = 16;
  if (r % block !== 0) return s.transpose(s.reshape(x, [b, r, c]), [0, 2, 1]);
  const blocks = s.transpose(s.reshape(x, [b, r / block, block, c]), [0, 1, 3, 2]);
  return s.reshape(s.transpose(blocks, [0, 2, 1, 3]), [b, c, r]);
}

/** x [n, h, w, c] -> [c, h, w, n], in passes that each keep the innermost axis or swap small blocks. */
function batchToChannels(s: Scratch, x: TensorInfo): TensorInfo {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const pixelMajor = s.transpose(s.reshape(x, [n, h * w, c]), [1, 0, 2]);
  const perPixel = swapInnerAxes(s, pixelMajor, [h * w, n, c]);
  return s.reshape(s.transpose(perPixel, [1, 0, 2]), [c, h, w, n]);
}

function channelsLastConvInfo(
  xShape: number[],
  filterShape: number[],
  attrs: Conv2DBackpropFilterAttrs | Conv2DBackpropInputAttrs,
  kernelName: string,
): backend_util.Conv2DInfo {
  if (attrs.dataFormat !== 'NHWC') {
    throw new Error(`${kernelName} on wasm supports dataFormat 'NHWC' only, got '${attrs.dataFormat}'`);
  }
  return backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/**
 * dW[kh,kw,ci,co] = sum_{n,oh,ow} xpad[n, oh*s+kh, ow*s+kw, ci] * dy[n,oh,ow,co] is a stride-1 forward
 * conv of x seen as [ci, h, w, n] (batch ci, channels n) with dy seen as an [oh, ow, n, co] filter,
 * dilated by the stride. It takes about 1.5-2.5x the forward conv's time, mostly because the wasm
 * Conv2D re-lays out its filter (here activation-sized) whenever the filter tensor is new.
 */
const conv2DBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const a = attrs as unknown as Conv2DBackpropFilterAttrs;
  const info = channelsLastConvInfo(x.shape, a.filterShape, a, Conv2DBackpropFilter);
  const { padInfo, strideHeight, strideWidth, filterHeight, filterWidth, outHeight, outWidth, inChannels, outChannels } = info;
  // Padding after x that makes the conv output exactly the kernel size; negative when the strided
  // windows never reach the last rows of x, which are then dropped by cropping the (small) output.
  const bottom = (outHeight - 1) * strideHeight + filterHeight - padInfo.top - info.inHeight;
  const right = (outWidth - 1) * strideWidth + filterWidth - padInfo.left - info.inWidth;
  return composite(backend, (s) => {
    const xT = batchToChannels(s, x);
    const dyT = s.transpose(dy, [1, 2, 0, 3]);
    if (filterHeight * filterWidth * strideHeight * strideWidth === 1 && [padInfo.top, bottom, padInfo.left, right].every((p) => p === 0)) {
      // Every dy pixel meets its own x pixel: one GEMM. As a conv, dy would be the filter, which the
      // wasm Conv2D re-lays out element by element on every call (several times the GEMM's time).
      const pixels = x.shape[0]! * outHeight * outWidth;
      const dw = s.run(
        BatchMatMul,
        { a: s.reshape(xT, [1, inChannels, pixels]), b: s.reshape(dyT, [1, pixels, outChannels]) },
        { transposeA: false, transposeB: false },
      );
      return s.reshape(dw, a.filterShape);
    }
    let dw = s.run(
      Conv2D,
      { x: xT, filter: dyT },
      {
        strides: [1, 1],
        pad: [[0, 0], [padInfo.top, Math.max(bottom, 0)], [padInfo.left, Math.max(right, 0)], [0, 0]],
        dilations: [strideHeight, strideWidth],
        dataFormat: 'NHWC',
      },
    );
    if (bottom < 0 || right < 0) {
      dw = s.run(Slice, { x: dw }, { begin: [0, 0, 0, 0], size: [inChannels, filterHeight, filterWidth, outChannels] });
    }
    return s.transpose(dw, [1, 2, 0, 3]);
  });
};

/**
 * How one spatial axis of dx = conv_transpose(dy, W) becomes a stride-1 forward conv (sub-pixel form):
 * dx position i = s*b + q (phase q) only receives kernel taps kh ≡ q + pad (mod s), so each phase is a
 * plain conv of dy with its own sub-kernel; the phases become extra output channels, interleaved back
 * into space afterwards. For stride 1 this is the flipped kernel with padding k-1-pad.
 */
interface AxisPlan {
  /** Sub-kernel length. */
  size: number;
  padBefore: number;
  padAfter: number;
  /** Conv output length; dx is the first xLen of stride * blocks positions. */
  blocks: number;
  /** Kernel index feeding phase q at sub-kernel position j, or -1 for none (a zero tap). */
  tap: (q: number, j: number) => number;
}

function planAxis(k: number, s: number, pad: number, dyLen: number, xLen: number): AxisPlan {
  // Phase q: dx[s*b + q] = sum_{m=0..last} dy[b + shift - m] * W[s*m + offset].
  const phases = Array.from({ length: s }, (_, q) => {
    const offset = (q + pad) % s;
    return { shift: Math.floor((q + pad) / s), offset, last: Math.ceil((k - offset) / s) - 1 };
  });
  // As a correlation out[b] = sum_j dyPadded[b + j] * G[j], sub-kernel position j meets
  // m = shift + padBefore - j; padBefore is the least that keeps every phase's m = last at j >= 0.
  const padBefore = Math.max(0, ...phases.map((p) => p.last - p.shift));
  const size = Math.max(...phases.map((p) => p.shift)) + padBefore + 1;
  const blocks = Math.ceil(xLen / s);
  const padAfter = blocks - dyLen - padBefore + size - 1;
  return {
    size,
    padBefore,
    padAfter: Math.max(padAfter, 0),
    blocks: blocks - Math.min(padAfter, 0),
    tap: (q, j) => {
      const p = phases[q]!;
      const m = p.shift + padBefore - j;
      const kIndex = s * m + p.offset;
      return m >= 0 && kIndex < k ? kIndex : -1;
    },
  };
}

/**
 * Rows of `source` (as [rows, rowSize]) stacked in the given order, -1 giving a zero row. Plain heap
 * copies: the wasm GatherV2 kernel moves element by element (~100 ms for a 3x3x512x512 kernel).
 */
function stackRows(s: Scratch, source: TensorInfo, rowSize: number, rows: number[]): TensorInfo {
  const out = s.adopt(s.backend.makeOutput([rows.length, rowSize], 'float32'));
  // Views are taken after makeOutput: growing the wasm heap detaches older views.
  const from = s.backend.typedArrayFromHeap(source);
  const to = s.backend.typedArrayFromHeap(out);
  rows.forEach((row, i) => {
    if (row < 0) to.fill(0, i * rowSize, (i + 1) * rowSize);
    else to.set(from.subarray(row * rowSize, (row + 1) * rowSize), i * rowSize);
  });
  return out;
}

/** The wasm package's own kernels that ours replace; ours fall back to them. */
const builtins = new Map<string, KernelConfig>();

function builtin(kernelName: string): KernelConfig {
  const kernel = builtins.get(kernelName);
  if (kernel === undefined) throw new Error(`no built-in wasm '${kernelName}' recorded`);
  return kernel;
}

/**
 * dx as one forward conv on XNNPACK: 3-13x faster than the built-in direct loop in every case measured
 * (kernels 1, 3, 7; strides 1, 2). Falls back to the built-in where the sub-pixel form does not apply.
 */
const conv2DBackpropInput: KernelFunc = (args) => {
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const a = args.attrs as unknown as Conv2DBackpropInputAttrs;
  if (a.dataFormat !== 'NHWC') return builtin(Conv2DBackpropInput).kernelFunc(args);
  const info = channelsLastConvInfo(a.inputShape, filter.shape, a, Conv2DBackpropInput);
  const st = info.strideHeight;
  // The phase interleave assumes one stride for both axes.
  if (info.strideWidth !== st) return builtin(Conv2DBackpropInput).kernelFunc(args);
  const { filterHeight: kh, filterWidth: kw, inChannels: ci, outChannels: co, padInfo } = info;
  const rows = planAxis(kh, st, padInfo.top, info.outHeight, info.inHeight);
  const cols = planAxis(kw, st, padInfo.left, info.outWidth, info.inWidth);
  // Filter rows [kh*kw] in the order [rows.size, cols.size, phase h, phase w].
  const taps: number[] = [];
  for (let jh = 0; jh < rows.size; jh++) {
    for (let jw = 0; jw < cols.size; jw++) {
      for (let qh = 0; qh < st; qh++) {
        for (let qw = 0; qw < st; qw++) {
          const th = rows.tap(qh, jh);
          const tw = cols.tap(qw, jw);
          taps.push(th < 0 || tw < 0 ? -1 : th * kw + tw);
        }
      }
    }
  }
  const phases = st * st;
  return composite(args.backend, (s) => {
    // [taps, phases * ci, co] -> [taps, co, phases * ci]: conv filter [rows, cols, in = co, out = (phase, ci)].
    const stacked = stackRows(s, filter, ci * co, taps);
    const subKernels = swapInnerAxes(s, stacked, [rows.size * cols.size, phases * ci, co]);
    let dx = s.run(
      Conv2D,
      { x: dy, filter: s.reshape(subKernels, [rows.size, cols.size, co, phases * ci]) },
      {
        strides: [1, 1],
        pad: [[0, 0], [rows.padBefore, rows.padAfter], [cols.padBefore, cols.padAfter], [0, 0]],
        dilations: [1, 1],
        dataFormat: 'NHWC',
      },
    );
    if (st > 1) {
      // Phases to space, as DepthToSpace does, but that kernel moves element by element (~70x slower).
      const n = a.inputShape[0];
      const interleaved = s.transpose(s.reshape(dx, [n, rows.blocks, cols.blocks, st, st, ci]), [0, 1, 3, 2, 4, 5]);
      dx = s.reshape(interleaved, [n, rows.blocks * st, cols.blocks * st, ci]);
    }
    if (rows.blocks * st !== info.inHeight || cols.blocks * st !== info.inWidth) {
      dx = s.run(Slice, { x: dx }, { begin: [0, 0, 0, 0], size: a.inputShape });
    }
    return dx;
  });
};

/**
 * The built-in runs XNNPACK only for single untransposed matrices and a naive loop otherwise, 10-20x
 * slower; matMul gradients always transpose one side (dq = dlogits @ queue^T in MoCo: 620 ms vs 70 ms
 * at 256x16384x128). So the transposed operand is materialised first.
 */
const batchMatMul: KernelFunc = (args) => {
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
  const singleMatrix = (t: TensorInfo) => util.sizeFromShape(t.shape.slice(0, -2)) === 1;
  if (!(transposeA || transposeB) || !singleMatrix(a) || !singleMatrix(b)) return builtin(BatchMatMul).kernelFunc(args);
  return composite(args.backend, (s) => {
    const upright = (t: TensorInfo, transposed: boolean) => {
      if (!transposed) return t;
      const [r, c] = t.shape.slice(-2) as [number, number];
      return s.reshape(swapInnerAxes(s, t, [1, r, c]), [...t.shape.slice(0, -2), c, r]);
    };
    const inputs = { a: upright(a, transposeA), b: upright(b, transposeB) };
    const attrs = { ...args.attrs, transposeA: false, transposeB: false };
    return s.adopt(builtin(BatchMatMul).kernelFunc({ inputs, backend: args.backend, attrs }) as TensorInfo);
  });
};

/** Needed by the gradient of gather; sums the rows of x into their segments (ids out of range are dropped). */
const unsortedSegmentSum: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = attrs as unknown as UnsortedSegmentSumAttrs;
  const wasm = backend as BackendWasm;
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const inner = util.sizeFromShape(innerShape);
  const out = wasm.makeOutput([numSegments, ...innerShape], x.dtype);
  // Views are taken after makeOutput: growing the wasm heap detaches older views.
  const xs = wasm.typedArrayFromHeap(x);
  const ids = wasm.typedArrayFromHeap(segmentIds);
  const sums = wasm.typedArrayFromHeap(out);
  sums.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const segment = ids[i]!;
    if (segment < 0 || segment >= numSegments) continue;
    for (let k = 0, from = i * inner, to = segment * inner; k < inner; k++) sums[to + k]! += xs[from + k]!;
  }
  return out;
};

/**
 * The built-in wasm MaxPoolGrad disagrees with the cpu backend and PyTorch by ~40% whenever pooling
 * windows overlap (ResNet's 3x3 stride-2 stem pool), so this replaces it: each output's gradient goes
 * to the first maximum of its window (PyTorch's tie rule), accumulated where windows overlap. Plain
 * JS over the wasm heap: the stem pool runs once a step, and correctness is what matters here.
 */
const maxPoolGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolGradAttrs;
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const wasm = backend as BackendWasm;
  const out = wasm.makeOutput(input.shape, 'float32');
  // Views are taken after makeOutput: growing the wasm heap detaches older views.
  const xs = wasm.typedArrayFromHeap(input);
  const dys = wasm.typedArrayFromHeap(dy);
  const dx = wasm.typedArrayFromHeap(out);
  dx.fill(0);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { filterHeight, filterWidth, padInfo } = info;
  for (let n = 0; n < batchSize; n++) {
    const base = n * inHeight * inWidth * inChannels;
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * strideHeight - padInfo.top;
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * strideWidth - padInfo.left;
        const g = ((n * outHeight + oy) * outWidth + ox) * inChannels;
        for (let c = 0; c < inChannels; c++) {
          let best = -Infinity;
          let at = -1;
          for (let fy = Math.max(0, -y0); fy < filterHeight && y0 + fy < inHeight; fy++) {
            for (let fx = Math.max(0, -x0); fx < filterWidth && x0 + fx < inWidth; fx++) {
              const i = base + ((y0 + fy) * inWidth + (x0 + fx)) * inChannels + c;
              if (xs[i]! > best || at < 0) {
                best = xs[i]!;
                at = i;
              }
            }
          }
          if (at >= 0) dx[at]! += dys[g + c]!;
        }
      }
    }
  }
  return out;
};

function replaceKernel(kernelName: string, kernelFunc: KernelFunc): void {
  const current = wasmKernel(kernelName);
  if (current.kernelFunc === kernelFunc) return;
  builtins.set(kernelName, current);
  unregisterKernel(kernelName, 'wasm');
  // Keeps the built-in's setupFunc: it binds the wasm function that the fallback calls.
  registerKernel({ ...current, kernelFunc });
}

/**
 * Registers, for the 'wasm' backend, the kernels a conv-net training step needs that tfjs-backend-wasm
 * lacks (Conv2DBackpropFilter, UnsortedSegmentSum), faster Conv2DBackpropInput and transposed
 * BatchMatMul, and a correct MaxPoolGrad. Idempotent.
 */
export function registerWasmGradientKernels(): void {
  replaceKernel(Conv2DBackpropInput, conv2DBackpropInput);
  replaceKernel(BatchMatMul, batchMatMul);
  replaceKernel(MaxPoolGrad, maxPoolGrad);
  for (const [kernelName, kernelFunc] of [
    [Conv2DBackpropFilter, conv2DBackpropFilter],
    [UnsortedSegmentSum, unsortedSegmentSum],
  ] as const) {
    if (getKernel(kernelName, 'wasm') === undefined) registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
  }
}
