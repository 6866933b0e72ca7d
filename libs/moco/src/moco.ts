import * as tf from './tf.js';
import type { MocoConfig } from './config.js';
import { Encoder } from './encoder.js';
import { variableGradsFreeing } from './gradients.js';
import { KeyQueue } from './key-queue.js';
import { infoNceLogits, infoNceLoss } from './info-nce.js';
import { l2Normalize } from './layers.js';
import type { Rng } from './rng.js';
import { Sgd } from './sgd.js';

// The native backend's one-pass momentum update, by name: @moco/native-kernels' EMA_UPDATE_KERNEL.
export const EMA_UPDATE_KERNEL = 'MocoEmaUpdate';

/** What one training step reports; tensors are kept only when asked (parity tests). */
export interface StepResult {
  loss: number;
  /** Fraction of queries whose positive key scores highest (pretext top-1). */
  pretextAccuracy: number;
  /** Std over the batch of the L2-normalised query features, averaged over dims (collapse -> 0). */
  featureStd: number;
  logits?: tf.Tensor2D[];
  grads?: Map<string, tf.Tensor>;
}

/**
 * Momentum Contrast (He et al. 2019), one device: a query encoder trained by SGD, a key encoder that
 * follows it by momentum, a queue of keys as negatives, InfoNCE over [positive, queue] / T, and
 * shuffle-BN done as in the official CIFAR demo (BN statistics per sub-batch, keys shuffled across
 * sub-batches and un-shuffled after).
 */
export class Moco {
  readonly query: Encoder;
  readonly key: Encoder;
  readonly queue: KeyQueue;
  readonly optimizer: Sgd;

  constructor(
    readonly config: MocoConfig,
    rng: Rng,
  ) {
    this.query = new Encoder(config, rng);
    this.key = new Encoder(config, this.query, false);
    this.queue = new KeyQueue(config.dim, config.K, rng);
    this.optimizer = new Sgd(config.momentum, config.weightDecay);
  }

  /** theta_k = m * theta_k + (1 - m) * theta_q over parameters only; BN buffers stay per encoder. */
  momentumUpdate(): void {
    const m = this.config.m;
    const fused = tf.getKernel(EMA_UPDATE_KERNEL, tf.getBackend()) !== undefined;
    tf.tidy(() => {
      for (const [name, k] of this.key.params) {
        const q = this.query.params.get(name)!;
        k.assign(fused ? (tf.engine().runKernel(EMA_UPDATE_KERNEL, { k, q }, { m }) as tf.Tensor) : k.mul(m).add(q.mul(1 - m)));
      }
    });
  }

  /** Keys of a batch: key encoder on a shuffled batch (shuffle-BN), normalised, un-shuffled. */
  keys(x: tf.Tensor4D, perm: Int32Array): tf.Tensor2D {
    return tf.tidy(() => {
      const inverse = new Int32Array(perm.length);
      perm.forEach((p, i) => (inverse[p] = i));
      const shuffled = tf.gather(x, tf.tensor1d(perm, 'int32'));
      const k = l2Normalize(this.key.forward(shuffled, { training: true, bnSplits: this.config.bnSplits }));
      return tf.gather(k, tf.tensor1d(inverse, 'int32'));
    });
  }

  /**
   * One MoCo step on two augmented views of the same images. `rng` draws the shuffle-BN
   * permutations. A batch of any size runs (the queue wraps; BN splits shrink to a divisor).
   */
  step(xq: tf.Tensor4D, xk: tf.Tensor4D, lr: number, rng: Rng, opts: { keepTensors?: boolean } = {}): StepResult {
    const { T, symmetric, bnSplits } = this.config;
    const n = xq.shape[0];
    this.momentumUpdate();
    const k2 = this.keys(xk, rng.permutation(n));
    const k1 = symmetric ? this.keys(xq, rng.permutation(n)) : null;
    const queue = this.queue.keys;
    const kept: { logits: tf.Tensor2D[]; q: tf.Tensor2D | null } = { logits: [], q: null };

    // InfoNCE of queries from `x` against their keys `k` and the queue; logits kept for reporting.
    const contrast = (x: tf.Tensor4D, k: tf.Tensor2D): tf.Scalar => {
      const q = l2Normalize(this.query.forward(x, { training: true, bnSplits }));
      const logits = infoNceLogits(q, k, queue as tf.Tensor2D, T);
      kept.logits.push(tf.keep(logits));
      if (!kept.q) kept.q = tf.keep(q);
      return infoNceLoss(logits);
    };
    const varList = [...this.query.params.values()];
    const { value, grads } = variableGradsFreeing(
      () => (k1 ? contrast(xq, k2).add(contrast(xk, k1)) : contrast(xq, k2)) as tf.Scalar,
      varList,
    );
    const gradsByName = new Map<string, tf.Tensor>();
    for (const [name, v] of this.query.params) gradsByName.set(name, grads[v.name]!);
    this.optimizer.step(this.query.params, gradsByName, lr);

    const enqueued = k1 ? tf.concat([k1, k2]) : k2;
    this.queue.enqueue(enqueued as tf.Tensor2D);

    const stats = tf.tidy(() =>
      tf.stack([
        value,
        kept.logits[0]!.argMax(1).equal(0).cast('float32').mean(),
        tf.moments(kept.q!, 0).variance.sqrt().mean(),
      ]),
    );
    const [loss, correct, featureStd] = stats.dataSync() as Float32Array;
    stats.dispose();
    const result: StepResult = { loss: loss!, pretextAccuracy: correct!, featureStd: featureStd! };
    if (opts.keepTensors) {
      result.logits = kept.logits;
      result.grads = gradsByName;
    } else {
      tf.dispose(kept.logits);
      tf.dispose(Object.values(grads));
    }
    tf.dispose([value, kept.q!, k2, enqueued]);
    if (k1) k1.dispose();
    return result;
  }

  dispose(): void {
    this.query.dispose();
    this.key.dispose();
    this.queue.dispose();
    this.optimizer.dispose();
  }
}
