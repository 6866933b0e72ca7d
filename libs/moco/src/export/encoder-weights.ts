import type { EncoderConfig, MocoConfig } from '../config.js';
import { resnetPlan, type ResnetPlan } from '../resnet-plan.js';
import { decodeTensors } from '../tensor-file.js';
import type { TrainingProgress } from '../training-state.js';

/** A tensor in PyTorch's layout (row-major, NCHW kernels [out, in, kh, kw], linear weights [out, in]). */
export interface TorchTensor {
  shape: number[];
  data: Float32Array;
}

/** The evaluation preprocessing a checkpoint's vectors assume: resize to `size`, scale to [0, 1], normalise. */
export interface Preprocessing {
  size: number;
  channels: 1 | 3;
  mean: number[];
  std: number[];
}

/** The query encoder of a training state: what exports carry (the key encoder, queue and optimizer stay behind). */
export interface EncoderWeights {
  config: EncoderConfig;
  plan: ResnetPlan;
  progress: TrainingProgress;
  /** torchvision's names (`layer1.0.conv1.weight`, `bn1.running_var`, `fc.weight`), in declaration order. */
  tensors: Map<string, TorchTensor>;
}

/** Reads the query encoder out of training-state bytes (saveTrainingState) without tfjs, converting layouts. */
export function readEncoderWeights(stateBytes: Uint8Array): EncoderWeights {
  const { meta, values } = decodeTensors<{ kind: string; config: MocoConfig; progress: TrainingProgress }>(stateBytes);
  if (meta.kind !== 'moco-training-state') throw new Error(`not a training state (kind ${String(meta.kind)})`);
  const tensors = new Map<string, TorchTensor>();
  for (const [key, v] of values) {
    const m = /^query\/(?:params|buffers)\/(.+)$/.exec(key);
    if (m) tensors.set(m[1]!, toTorchLayout(v));
  }
  return { config: meta.config, plan: resnetPlan(meta.config), progress: meta.progress, tensors };
}

/** tfjs' conv kernels [kh, kw, in, out] become [out, in, kh, kw]; linear [in, out] becomes [out, in]. */
function toTorchLayout(v: { shape: number[]; data: Float32Array }): TorchTensor {
  if (v.shape.length === 4) return { shape: [v.shape[3]!, v.shape[2]!, v.shape[0]!, v.shape[1]!], data: permute(v.data, v.shape, [3, 2, 0, 1]) };
  if (v.shape.length === 2) return { shape: [v.shape[1]!, v.shape[0]!], data: permute(v.data, v.shape, [1, 0]) };
  return { shape: [...v.shape], data: v.data };
}

/** Row-major transpose: output axis i is input axis order[i]. */
function permute(data: Float32Array, shape: number[], order: number[]): Float32Array {
  const inStrides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const outShape = order.map((a) => shape[a]!);
  const out = new Float32Array(data.length);
  const index = new Array<number>(outShape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let i = 0; i < order.length; i++) src += index[i]! * inStrides[order[i]!]!;
    out[o] = data[src]!;
    for (let i = outShape.length - 1; i >= 0; i--) {
      if (++index[i]! < outShape[i]!) break;
      index[i] = 0;
    }
  }
  return out;
}

/** Each convolution with its BatchNorm folded in (eval mode): kernel scaled per output channel, plus a bias. */
export function foldConvBn(w: EncoderWeights, conv: string, bn: string): { weight: TorchTensor; bias: TorchTensor } {
  const kernel = w.tensors.get(`${conv}.weight`)!;
  const get = (name: string) => w.tensors.get(`${bn}.${name}`)!.data;
  const [gamma, beta, mean, variance] = [get('weight'), get('bias'), get('running_mean'), get('running_var')];
  const out = kernel.shape[0]!;
  const per = kernel.data.length / out;
  const weight = new Float32Array(kernel.data.length);
  const bias = new Float32Array(out);
  for (let c = 0; c < out; c++) {
    // In float64, as a reference would, then rounded once.
    const scale = gamma[c]! / Math.sqrt(variance[c]! + w.config.bnEps);
    for (let i = c * per; i < (c + 1) * per; i++) weight[i] = kernel.data[i]! * scale;
    bias[c] = beta[c]! - mean[c]! * scale;
  }
  return { weight: { shape: kernel.shape, data: weight }, bias: { shape: [out], data: bias } };
}

/** float32 values as little-endian bytes (ONNX raw_data, torch storages), whatever the host's byte order. */
export function littleEndianBytes(data: Float32Array): Uint8Array {
  const bytes = new Uint8Array(data.length * 4);
  const view = new DataView(bytes.buffer);
  data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return bytes;
}
