import type { MocoConfig } from './config.js';
import { resnetPlan } from './resnet-plan.js';

const FLOAT_BYTES = 4;

/**
 * Peak memory of one training step (Moco.step), by the calibration in bench/memory-estimate.ts
 * (`npm run -s bench:memory`): measured wasm heaps of real steps (widths 8 to 32, batches 32 to
 * 128, 28 and 32 pixels) fitted as
 *   BASE_BYTES + PARAMETER_COPIES * parameters + queue + ACTIVATION_COPIES * batch * activations.
 * `activations` counts one float per element of every convolution's output for one image (each is
 * followed by batch norm and most by a ReLU, whose outputs the backward pass keeps as well).
 */
export const MEMORY_MODEL = {
  /** The backend's own memory before any tensor (wasm module, stacks, scratch); fitted. */
  BASE_BYTES: 24 * 2 ** 20,
  /**
   * Query and key weights, gradients, SGD momentum and the temporaries of the momentum update and of
   * the weight gradients. Fitted (the widest measured encoder needs about 7), rounded up.
   */
  PARAMETER_COPIES: 7,
  /**
   * Floats kept per convolution output element: the query pass's tape (convolution, batch-norm
   * intermediates, ReLU), the gradients still live during the backward pass (variableGradsFreeing
   * releases each node's as it goes), plus the key pass. Fitted (11.0 by least squares), so that
   * the estimate stays at or above every measured heap.
   */
  ACTIVATION_COPIES: 11,
};

export interface TrainingMemoryEstimate {
  /** Estimated peak bytes of one step. */
  bytes: number;
  parameters: number;
  /** Floats of every convolution output, per image. */
  activationsPerImage: number;
  parts: { base: number; parameters: number; queue: number; activations: number; inputs: number };
}

/** Learnable floats and floats of convolution outputs per image of the encoder `c` describes. */
function encoderSize(c: Pick<MocoConfig, 'arch' | 'stem' | 'width' | 'inChannels' | 'head' | 'dim'>, imageSize: number) {
  const plan = resnetPlan(c as MocoConfig);
  let parameters = 0;
  let activations = 0;
  let side = imageSize;
  const conv = (k: number, cin: number, cout: number, stride: number) => {
    side = Math.ceil(side / stride);
    parameters += k * k * cin * cout + 2 * cout; // weights, then the batch norm's scale and shift
    activations += side * side * cout;
  };
  conv(plan.stem.kernel, c.inChannels, plan.stem.outChannels, plan.stem.stride);
  if (plan.stem.maxPool) side = Math.ceil(side / 2);
  for (const b of plan.blocks) {
    const inSide = side;
    if (b.kind === 'basic') {
      conv(3, b.inChannels, b.planes, b.stride);
      conv(3, b.planes, b.outChannels, 1);
    } else {
      conv(1, b.inChannels, b.planes, 1);
      conv(3, b.planes, b.planes, b.stride);
      conv(1, b.planes, b.outChannels, 1);
    }
    if (b.downsample) {
      const outSide = side;
      side = inSide;
      conv(1, b.inChannels, b.outChannels, b.stride);
      side = outSide;
    }
  }
  const f = plan.featureDim;
  parameters += c.head === 'v2' ? f * f + f + f * c.dim + c.dim : f * c.dim + c.dim;
  return { parameters, activations };
}

/**
 * Estimated peak memory of one MoCo training step with this configuration on images of
 * `imageSize` pixels a side: pure arithmetic, no TensorFlow.js. The API refuses jobs whose
 * estimate exceeds what the workers have (the wasm backend's heap stops at 4 GiB).
 */
export function estimateTrainingMemory(config: MocoConfig, imageSize: number): TrainingMemoryEstimate {
  const { parameters, activations } = encoderSize(config, imageSize);
  const views = config.symmetric ? 2 : 1;
  const parts = {
    base: MEMORY_MODEL.BASE_BYTES,
    parameters: MEMORY_MODEL.PARAMETER_COPIES * parameters * FLOAT_BYTES,
    queue: config.K * config.dim * FLOAT_BYTES,
    activations: MEMORY_MODEL.ACTIVATION_COPIES * views * config.batchSize * activations * FLOAT_BYTES,
    inputs: 2 * config.batchSize * imageSize * imageSize * config.inChannels * FLOAT_BYTES,
  };
  return {
    bytes: Object.values(parts).reduce((a, b) => a + b, 0),
    parameters,
    activationsPerImage: activations,
    parts,
  };
}

/** Memory a backend can address whatever the machine has: 32-bit wasm's heap stops at 4 GiB. */
export const BACKEND_MEMORY_CAP_BYTES: Partial<Record<'tensorflow' | 'native' | 'wasm' | 'cpu', number>> = { wasm: 4 * 2 ** 30 };
