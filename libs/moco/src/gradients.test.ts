import { beforeAll, describe, expect, it } from 'vitest';
import { variableGradsFreeing } from './gradients.js';
import { useCpuBackend } from './testing/setup-cpu.js';
import * as tf from './tf.js';

beforeAll(useCpuBackend);

// A deep chain of convolutions with ReLUs and a branch that reuses an activation (its gradient is
// accumulated from two consumers), plus a variable that does not reach the loss.
function model() {
  const x = tf.randomNormal([4, 16, 16, 8], 0, 1, 'float32', 1) as tf.Tensor4D;
  const ws = Array.from({ length: 6 }, (_, i) => tf.variable(tf.randomNormal([3, 3, 8, 8], 0, 0.2, 'float32', 10 + i), true, `gw${i}`));
  const unused = tf.variable(tf.zeros([3]), true, 'gunused');
  const loss = (): tf.Scalar => {
    let h = x;
    let skip: tf.Tensor4D | null = null;
    for (const [i, w] of ws.entries()) {
      h = tf.relu(tf.conv2d(h, w as tf.Variable<tf.Rank.R4>, 1, 'same'));
      if (i === 1) skip = h;
    }
    return tf.add(h, skip!).square().mean() as tf.Scalar;
  };
  return { x, vars: [...ws, unused], loss, dispose: () => tf.dispose([x, ...ws, unused]) };
}

describe('variableGradsFreeing', () => {
  it("gives tfjs's gradients exactly, leaves no tensor behind, and skips variables off the path", () => {
    const m = model();
    const expected = tf.variableGrads(m.loss, m.vars);
    const before = tf.memory().numTensors;
    const got = variableGradsFreeing(m.loss, m.vars);
    expect(got.value.dataSync()[0]).toBe(expected.value.dataSync()[0]);
    expect(Object.keys(got.grads).sort()).toEqual(Object.keys(expected.grads).sort());
    expect(Object.keys(got.grads)).not.toContain('gunused');
    for (const [name, g] of Object.entries(expected.grads)) expect(Array.from(got.grads[name]!.dataSync())).toEqual(Array.from(g.dataSync()));
    // What is left: the loss and one gradient per variable on the path.
    expect(tf.memory().numTensors - before).toBe(1 + Object.keys(got.grads).length);
    tf.dispose([expected.value, got.value, ...Object.values(expected.grads), ...Object.values(got.grads)]);
    m.dispose();
  });

  it("holds less than tfjs's backward pass half-way through: saved tensors and spent gradients are gone", () => {
    // An identity op between layers 2 and 3 whose gradient notes the bytes alive when the backward
    // pass reaches it: the later layers' work is done by then.
    const seen: number[] = [];
    const probe = tf.customGrad((x, save) => {
      void save;
      return { value: (x as tf.Tensor).clone(), gradFunc: (dy: tf.Tensor | tf.Tensor[]) => (seen.push(tf.memory().numBytes), (dy as tf.Tensor).clone()) };
    });
    const x = tf.randomNormal([4, 16, 16, 8], 0, 1, 'float32', 1) as tf.Tensor4D;
    const ws = Array.from({ length: 6 }, (_, i) => tf.variable(tf.randomNormal([3, 3, 8, 8], 0, 0.2, 'float32', 20 + i), true, `pw${i}`));
    const loss = (): tf.Scalar => {
      let h = x;
      for (const [i, w] of ws.entries()) {
        h = tf.relu(tf.conv2d(h, w as tf.Variable<tf.Rank.R4>, 1, 'same'));
        if (i === 2) h = probe(h) as tf.Tensor4D;
      }
      return h.square().mean() as tf.Scalar;
    };
    for (const f of [tf.variableGrads, variableGradsFreeing]) {
      const out = f(loss, ws);
      tf.dispose([out.value, ...Object.values(out.grads)]);
    }
    const [tfjs, freeing] = seen as [number, number];
    expect(freeing).toBeLessThan(0.8 * tfjs);
    tf.dispose([x, ...ws]);
  });
});
