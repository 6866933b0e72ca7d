import * as tf from './tf.js';

// tfjs's own backward pass (tfjs-core 4.22: engine.gradients, tape.backpropagateGradients) keeps every
// tape node's saved tensors and every intermediate gradient until the whole pass ends, so a training
// step's peak holds the forward activations and the backward's gradients at once. PyTorch frees both as
// backward proceeds. This is the same walk over the same tape, with the same gradient functions, that
// lets go of a node's saved tensors and of its outputs' gradients as soon as the node is done.
// tfjs has no public hook for that, so it drives the engine's tape through the methods
// engine.gradients itself uses (typed below).

interface TapeNode {
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

interface TapeEngine {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(name: string, f: () => T): T;
}

/** The nodes on a path from one of `xs` to `y`, in tape order, each with only its inputs that come from `xs`. */
function nodesFromXsToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const reachedFromX = tape.map((node) => {
    const reached = Object.values(node.inputs).some((t) => fromX.has(t.id));
    if (reached) for (const o of node.outputs) fromX.add(o.id);
    return reached;
  });
  const toY = new Set([y.id]);
  const leadsToY = new Array<boolean>(tape.length).fill(false);
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!;
    if (!node.outputs.some((o) => toY.has(o.id))) continue;
    leadsToY[i] = true;
    for (const t of Object.values(node.inputs)) toY.add(t.id);
  }
  return tape.flatMap((node, i) =>
    reachedFromX[i] && leadsToY[i]
      ? [{ ...node, inputs: Object.fromEntries(Object.entries(node.inputs).filter(([, t]) => fromX.has(t.id))) }]
      : [],
  );
}

/**
 * `tf.variableGrads(f, varList)` with the step's memory released as the backward pass goes: the loss
 * and each variable's gradient by variable name (variables with no path to the loss are left out).
 */
export function variableGradsFreeing(f: () => tf.Scalar, varList: tf.Variable[]): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
  const engine = tf.engine() as unknown as TapeEngine;
  if (engine.state.gradientDepth > 0) throw new Error('variableGradsFreeing does not nest inside another gradient');
  const y = engine.scopedRun(
    () => engine.startTape(),
    () => engine.endTape(),
    () => engine.tidy('forward', f),
  );
  if (y.rank !== 0) throw new Error(`the loss must be a scalar, not rank ${y.rank}`);
  const tape = engine.state.activeTape!;
  const nodes = nodesFromXsToY(tape, varList, y);
  const wanted = new Set(varList.map((v) => v.id));
  return engine.tidy('backward', () => {
    // Each stored gradient is its own tensor object (a clone shares the data), so letting go of one
    // never frees another that a gradient function returned as is.
    const gradOf = new Map<number, tf.Tensor>([[y.id, tf.onesLike(y)]]);
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i]!;
      if (!node.gradient) throw new Error('cannot compute a gradient: an op on the path has no gradient function');
      const dys = node.outputs.map((o) => gradOf.get(o.id) ?? null);
      const inputGrads = node.gradient(dys);
      for (const [name, x] of Object.entries(node.inputs)) {
        const dx = engine.tidy(`grad-${name}`, () => inputGrads[name]!().clone());
        const previous = gradOf.get(x.id);
        if (previous) {
          gradOf.set(x.id, tf.add(previous, dx));
          tf.dispose([previous, dx]);
        } else gradOf.set(x.id, dx);
      }
      // Every tensor is one node's output: its gradient is spent, and so are the node's saved tensors.
      for (const o of node.outputs) {
        if (wanted.has(o.id)) continue;
        gradOf.get(o.id)?.dispose();
        gradOf.delete(o.id);
      }
      tf.dispose(node.saved ?? []);
    }
    for (const node of tape) tf.dispose(node.saved ?? []);
    engine.state.activeTape = null;
    const grads: Record<string, tf.Tensor> = {};
    for (const v of varList) {
      const g = gradOf.get(v.id);
      if (g) grads[v.name] = g;
    }
    return { value: y, grads };
  });
}
