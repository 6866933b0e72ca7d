import type { MocoConfig } from './config.js';
import { Moco } from './moco.js';
import { Rng, type RngState } from './rng.js';
import { decodeTensors, encodeTensors } from './tensor-file.js';
import * as tf from './tf.js';

/** Where a run stands, beside the tensors: enough to continue it exactly. */
export interface TrainingProgress {
  /** Optimizer steps done. */
  step: number;
  epoch: number;
  /** Batches of `epoch` already done (the next one to run). */
  batchInEpoch: number;
  /** The trainer's RNG (augmentations, shuffle-BN permutations) after the last step. */
  rng: RngState;
  /** Caller data carried along (dataset statistics, metrics so far...). */
  extra?: Record<string, unknown>;
}

interface StateMeta {
  kind: 'moco-training-state';
  config: MocoConfig;
  queuePtr: number;
  progress: TrainingProgress;
}

/**
 * The whole training state as bytes (see tensor-file.ts for the container): tensors
 * `query/params/<name>`, `query/buffers/<name>`, `key/params/<name>`, `key/buffers/<name>`,
 * `queue` ([dim, K]) and `optimizer/momentum/<param name>`; the header holds the config, queue
 * pointer, step, epoch, position in the epoch and RNG state.
 */
export async function saveTrainingState(moco: Moco, progress: TrainingProgress): Promise<Uint8Array> {
  const tensors = new Map<string, tf.Tensor>();
  for (const [name, v] of moco.query.namedTensors()) tensors.set(`query/${name}`, v);
  for (const [name, v] of moco.key.namedTensors()) tensors.set(`key/${name}`, v);
  tensors.set('queue', moco.queue.keys);
  for (const [name, v] of moco.optimizer.slots) tensors.set(`optimizer/momentum/${name}`, v);
  const meta: StateMeta = { kind: 'moco-training-state', config: moco.config, queuePtr: moco.queue.ptr, progress };
  return encodeTensors({ ...meta }, tensors);
}

export function loadTrainingState(bytes: Uint8Array): { moco: Moco; progress: TrainingProgress; rng: Rng } {
  const { meta, values } = decodeTensors<StateMeta>(bytes);
  if (meta.kind !== 'moco-training-state') throw new Error(`not a training state (kind ${String(meta.kind)})`);
  // Initial values are overwritten below; the seed is irrelevant.
  const moco = new Moco(meta.config, new Rng(0));
  const take = (name: string) => {
    const v = values.get(name);
    if (!v) throw new Error(`training state lacks tensor ${name}`);
    return tf.tensor(v.data, v.shape);
  };
  const assign = (target: tf.Variable, name: string) => {
    const t = take(name);
    if (t.shape.join() !== target.shape.join()) {
      throw new Error(`tensor ${name} has shape [${t.shape}], expected [${target.shape}]`);
    }
    target.assign(t);
    t.dispose();
  };
  for (const [name, v] of moco.query.namedTensors()) assign(v, `query/${name}`);
  for (const [name, v] of moco.key.namedTensors()) assign(v, `key/${name}`);
  assign(moco.queue.keys, 'queue');
  moco.queue.ptr = meta.queuePtr;
  for (const name of values.keys()) {
    if (!name.startsWith('optimizer/momentum/')) continue;
    const t = take(name);
    moco.optimizer.slots.set(name.slice('optimizer/momentum/'.length), tf.variable(t, false));
    t.dispose();
  }
  return { moco, progress: meta.progress, rng: new Rng(meta.progress.rng) };
}
