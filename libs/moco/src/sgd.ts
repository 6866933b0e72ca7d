import * as tf from './tf.js';

// The native backend's one-pass SGD update, by name: @moco/native-kernels' SGD_STEP_KERNEL.
export const SGD_STEP_KERNEL = 'MocoSgdStep';

/**
 * SGD with momentum and weight decay as torch.optim.SGD (dampening 0, no Nesterov): the decay is
 * added to the gradient, on every parameter. tfjs' MomentumOptimizer differs (no decay, and it scales
 * the velocity by lr before accumulating), which would change the trajectory when lr changes.
 */
export class Sgd {
  /** Momentum buffers by parameter name; absent until a parameter's first step, like PyTorch's. */
  readonly slots = new Map<string, tf.Variable>();

  constructor(
    readonly momentum: number,
    readonly weightDecay: number,
  ) {}

  step(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number): void {
    const fused = tf.getKernel(SGD_STEP_KERNEL, tf.getBackend()) !== undefined;
    tf.tidy(() => {
      for (const [name, p] of params) {
        const grad = grads.get(name);
        if (!grad) continue;
        if (fused) {
          this.fusedStep(name, p, grad, lr);
          continue;
        }
        const g = this.weightDecay === 0 ? grad : grad.add(p.mul(this.weightDecay));
        let direction = g;
        if (this.momentum !== 0) {
          const buf = this.slots.get(name);
          if (buf) {
            buf.assign(buf.mul(this.momentum).add(g));
            direction = buf;
          } else {
            this.slots.set(name, tf.variable(g, false));
          }
        }
        p.assign(p.sub(direction.mul(lr)));
      }
    });
  }

  /** The same update as one kernel pass per parameter (native backend). */
  private fusedStep(name: string, p: tf.Variable, grad: tf.Tensor, lr: number): void {
    const buf = this.slots.get(name);
    const inputs: tf.NamedTensorMap = { p, grad };
    if (buf) inputs.buf = buf;
    const [next, nextBuf] = tf.engine().runKernel(
      SGD_STEP_KERNEL, inputs, { lr, momentum: this.momentum, weightDecay: this.weightDecay } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
    p.assign(next!);
    if (this.momentum === 0) return;
    if (buf) buf.assign(nextBuf!);
    else this.slots.set(name, tf.variable(nextBuf!, false));
  }

  dispose(): void {
    for (const v of this.slots.values()) v.dispose();
    this.slots.clear();
  }
}
