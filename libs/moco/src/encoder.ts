import * as tf from './tf.js';
import type { EncoderConfig } from './config.js';
import { batchNorm, conv2d, foldBn, foldedConv2d, l2Normalize, linear, RESNET_FEATURES_KERNEL, type BnMode, type BnPost, type FoldedConv } from './layers.js';
import { backboneSteps, resnetPlan, type BackboneStep, type ResnetPlan } from './resnet-plan.js';
import type { Rng } from './rng.js';

export interface ForwardOptions {
  training: boolean;
  /** BN sub-batches in training (shuffle-BN); 1 = ordinary BN. */
  bnSplits?: number;
  /** Update BN running statistics (training only); default true. */
  updateStats?: boolean;
  /** `head`: the projection (what MoCo contrasts); `backbone`: pooled features (kNN, probes, serving). */
  output?: 'head' | 'backbone';
}

type Init = { kind: 'conv'; fanOut: number } | { kind: 'uniform'; bound: number } | { kind: 'const'; value: number };

/**
 * A ResNet backbone with a MoCo projection head, as explicit variables named like torchvision's
 * (`layer1.0.conv1.weight`), so weights map one to one onto PyTorch checkpoints. Layouts are
 * TensorFlow.js': conv kernels [kh, kw, in, out], linear weights [in, out], inputs NHWC.
 */
export class Encoder {
  /** Trainable parameters, in declaration order. */
  readonly params = new Map<string, tf.Variable>();
  /** BN running statistics: each encoder keeps its own; they are never averaged between encoders. */
  readonly buffers = new Map<string, tf.Variable>();
  readonly plan: ResnetPlan;
  /** The forward pass's steps; `stepCodes` the same for RESNET_FEATURES_KERNEL; `lastRead[i]` the values (not the input) step i reads last. */
  private readonly steps: BackboneStep[];
  private readonly stepCodes: number[];
  private readonly lastRead: number[][];
  /** After `freeze()`: each convolution with its BN folded in, by convolution name, filled on first use. */
  private folded: Map<string, FoldedConv> | undefined;

  /** New weights drawn from `init` (torchvision's initialisation), or an exact copy of another encoder. */
  constructor(
    readonly config: EncoderConfig,
    init: Rng | Encoder,
    trainable = true,
  ) {
    this.plan = resnetPlan(config);
    this.steps = backboneSteps(this.plan);
    this.stepCodes = this.steps.flatMap((s) =>
      s.kind === 'conv' ? [0, s.src, s.residual ?? -1, s.stride, s.pad, s.relu ? 1 : 0] : [1, s.src, -1, 2, 1, 0],
    );
    const lastReader = new Map<number, number>();
    this.steps.forEach((s, i) => {
      lastReader.set(s.src, i);
      if (s.kind === 'conv' && s.residual !== undefined) lastReader.set(s.residual, i);
    });
    this.lastRead = this.steps.map(() => []);
    for (const [value, step] of lastReader) if (value !== 0) this.lastRead[step]!.push(value);
    const source = init instanceof Encoder ? init : null;
    const declare = (name: string, shape: number[], how: Init, buffer = false) => {
      const value = source
        ? (buffer ? source.buffers : source.params).get(name)!.clone()
        : initialValue(shape, how, init as Rng);
      const v = tf.variable(value, trainable && !buffer, `${name}#${nextId++}`);
      value.dispose();
      (buffer ? this.buffers : this.params).set(name, v);
    };
    const declareConv = (name: string, k: number, cin: number, cout: number) =>
      declare(`${name}.weight`, [k, k, cin, cout], { kind: 'conv', fanOut: cout * k * k });
    const declareBn = (name: string, c: number) => {
      declare(`${name}.weight`, [c], { kind: 'const', value: 1 });
      declare(`${name}.bias`, [c], { kind: 'const', value: 0 });
      declare(`${name}.running_mean`, [c], { kind: 'const', value: 0 }, true);
      declare(`${name}.running_var`, [c], { kind: 'const', value: 1 }, true);
    };
    const declareLinear = (name: string, fin: number, fout: number) => {
      const bound = 1 / Math.sqrt(fin);
      declare(`${name}.weight`, [fin, fout], { kind: 'uniform', bound });
      declare(`${name}.bias`, [fout], { kind: 'uniform', bound });
    };

    const { stem, blocks, featureDim } = this.plan;
    declareConv('conv1', stem.kernel, config.inChannels, stem.outChannels);
    declareBn('bn1', stem.outChannels);
    for (const b of blocks) {
      if (b.kind === 'basic') {
        declareConv(`${b.name}.conv1`, 3, b.inChannels, b.planes);
        declareBn(`${b.name}.bn1`, b.planes);
        declareConv(`${b.name}.conv2`, 3, b.planes, b.planes);
        declareBn(`${b.name}.bn2`, b.planes);
      } else {
        declareConv(`${b.name}.conv1`, 1, b.inChannels, b.planes);
        declareBn(`${b.name}.bn1`, b.planes);
        declareConv(`${b.name}.conv2`, 3, b.planes, b.planes);
        declareBn(`${b.name}.bn2`, b.planes);
        declareConv(`${b.name}.conv3`, 1, b.planes, b.outChannels);
        declareBn(`${b.name}.bn3`, b.outChannels);
      }
      if (b.downsample) {
        declareConv(`${b.name}.downsample.0`, 1, b.inChannels, b.outChannels);
        declareBn(`${b.name}.downsample.1`, b.outChannels);
      }
    }
    if (config.head === 'v1') {
      declareLinear('fc', featureDim, config.dim);
    } else {
      declareLinear('fc.0', featureDim, featureDim);
      declareLinear('fc.2', featureDim, config.dim);
    }
  }

  get featureDim(): number {
    return this.plan.featureDim;
  }

  /**
   * For an encoder that only serves from now on: eval passes keep each convolution's folded weights
   * instead of folding BN again every pass (about a tenth of a small batch's forward pass). Training a
   * frozen encoder throws: its folded weights would go stale.
   */
  freeze(): void {
    this.folded ??= new Map();
  }

  /** Images NHWC (normalised floats) to a [N, dim] head output or [N, featureDim] pooled features. */
  forward(x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor2D {
    if (opts.training && this.folded) throw new Error('this encoder is frozen for inference and cannot train');
    return tf.tidy(() => {
      const p = (name: string): tf.Tensor => this.params.get(name)!;
      const mode: BnMode = {
        splits: opts.bnSplits ?? 1,
        momentum: this.config.bnMomentum,
        eps: this.config.bnEps,
        updateStats: opts.updateStats ?? true,
      };
      const bn = (name: string, y: tf.Tensor4D, post: BnPost) =>
        batchNorm(
          y,
          p(`${name}.weight`) as tf.Tensor1D,
          p(`${name}.bias`) as tf.Tensor1D,
          this.buffers.get(`${name}.running_mean`)!,
          this.buffers.get(`${name}.running_var`)!,
          mode,
          post,
        );
      const folded = (convName: string, bnName: string): FoldedConv => {
        const kept = this.folded?.get(convName);
        if (kept) return kept;
        const f = foldBn(p(`${convName}.weight`) as tf.Tensor4D, {
          gamma: p(`${bnName}.weight`) as tf.Tensor1D,
          beta: p(`${bnName}.bias`) as tf.Tensor1D,
          mean: this.buffers.get(`${bnName}.running_mean`)! as tf.Tensor1D,
          variance: this.buffers.get(`${bnName}.running_var`)! as tf.Tensor1D,
          eps: this.config.bnEps,
        });
        this.folded?.set(convName, { filter: tf.keep(f.filter), bias: tf.keep(f.bias) });
        return f;
      };
      let features: tf.Tensor2D;
      if (!opts.training && x.shape[0] > 0 && tf.getKernel(RESNET_FEATURES_KERNEL, tf.getBackend())) {
        // The whole backbone as one native call (the native backend's frozen graph).
        const inputs: tf.NamedTensorMap = { x };
        this.steps.filter((s) => s.kind === 'conv').forEach((s, i) => {
          const f = folded(s.conv, s.bn);
          inputs[`filter${i}`] = f.filter;
          inputs[`bias${i}`] = f.bias;
        });
        features = tf.engine().runKernel(RESNET_FEATURES_KERNEL, inputs, { ops: this.stepCodes } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
      } else {
        // Step by step. An eval pass lets go of each value after its last reader (tidy would keep them all
        // to the end): a width-64 batch-128 embedding holds a few activations instead of every one. A
        // training pass keeps them, for the backward.
        const values: tf.Tensor4D[] = [x];
        this.steps.forEach((s, i) => {
          const src = values[s.src]!;
          if (s.kind === 'maxPool') values.push(tf.maxPool(src, 3, 2, 1));
          else {
            const w = p(`${s.conv}.weight`) as tf.Tensor4D;
            const residual = s.residual === undefined ? undefined : values[s.residual];
            // Convolution, BN, optional residual, optional ReLU: in eval mode one fused convolution (BN folded in).
            values.push(
              opts.training
                ? bn(s.bn, conv2d(src, w, s.stride, s.pad), { residual, relu: s.relu })
                : foldedConv2d(src, folded(s.conv, s.bn), s.stride, s.pad, s.relu, residual),
            );
          }
          if (!opts.training) for (const v of this.lastRead[i]!) values[v]!.dispose();
        });
        const h = values.at(-1)!;
        features = h.mean([1, 2]);
        if (!opts.training) h.dispose();
      }
      if (opts.output === 'backbone') return features;
      if (this.config.head === 'v1') {
        return linear(features, p('fc.weight') as tf.Tensor2D, p('fc.bias') as tf.Tensor1D);
      }
      const hidden: tf.Tensor2D = linear(features, p('fc.0.weight') as tf.Tensor2D, p('fc.0.bias') as tf.Tensor1D).relu();
      return linear(hidden, p('fc.2.weight') as tf.Tensor2D, p('fc.2.bias') as tf.Tensor1D);
    });
  }

  /** Inference in batches: eval-mode BN, optional L2 normalisation, results as one [N, D] array. */
  async embed(
    images: tf.Tensor4D,
    opts: { output?: 'head' | 'backbone'; normalize?: boolean; batchSize?: number } = {},
  ): Promise<{ data: Float32Array; dim: number }> {
    const batchSize = opts.batchSize ?? 256;
    const n = images.shape[0];
    const dim = opts.output === 'backbone' ? this.featureDim : this.config.dim;
    const data = new Float32Array(n * dim);
    for (let start = 0; start < n; start += batchSize) {
      const out = tf.tidy(() => {
        const batch = images.slice(start, Math.min(batchSize, n - start));
        const y = this.forward(batch, { training: false, output: opts.output ?? 'head' });
        return opts.normalize ? l2Normalize(y) : y;
      });
      data.set(await out.data<'float32'>(), start * dim);
      out.dispose();
    }
    return { data, dim };
  }

  /** All trainable and buffer tensors by name (`params/...`, `buffers/...`). */
  namedTensors(): Map<string, tf.Variable> {
    const all = new Map<string, tf.Variable>();
    for (const [k, v] of this.params) all.set(`params/${k}`, v);
    for (const [k, v] of this.buffers) all.set(`buffers/${k}`, v);
    return all;
  }

  dispose(): void {
    for (const v of this.namedTensors().values()) v.dispose();
    for (const f of this.folded?.values() ?? []) tf.dispose([f.filter, f.bias]);
  }
}

// tfjs variable names must be unique per process; the suffix keeps encoders apart.
let nextId = 0;

function initialValue(shape: number[], how: Init, rng: Rng): tf.Tensor {
  if (how.kind === 'const') return tf.fill(shape, how.value);
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  if (how.kind === 'conv') {
    // kaiming_normal_(mode='fan_out', nonlinearity='relu'), as torchvision's ResNet.
    const std = Math.sqrt(2 / how.fanOut);
    for (let i = 0; i < size; i++) values[i] = rng.normal() * std;
  } else {
    for (let i = 0; i < size; i++) values[i] = rng.uniform(-how.bound, how.bound);
  }
  return tf.tensor(values, shape);
}
