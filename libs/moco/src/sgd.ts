import * as tf from './tf.js';

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
    tf.tidy(() => {
      for (const [name, p] of params) {
        const grad = grads.get(name);
        if (!grad) continue;
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

  dispose(): void {
    for (const v of this.slots.values()) v.dispose();
    this.slots.clear();
  }
}
