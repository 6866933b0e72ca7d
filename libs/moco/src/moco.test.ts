import { beforeAll, describe, expect, it } from 'vitest';
import { cifarDemoDefaults, type MocoConfig } from './config.js';
import { Moco } from './moco.js';
import { Rng } from './rng.js';
import { useCpuBackend } from './testing/setup-cpu.js';
import * as tf from './tf.js';
import { loadTrainingState, saveTrainingState } from './training-state.js';

beforeAll(useCpuBackend);

const tiny: MocoConfig = { ...cifarDemoDefaults, width: 4, dim: 8, K: 32, bnSplits: 2, batchSize: 8 };
const images = (rng: Rng, n = 8) =>
  tf.tensor4d(new Float32Array(n * 8 * 8 * 3).map(() => rng.normal()), [n, 8, 8, 3]);
const values = (m: Map<string, tf.Variable>) => new Map([...m].map(([k, v]) => [k, v.dataSync().slice()]));

describe('Moco', () => {
  it('starts the key encoder as an exact copy with the same names', () => {
    const moco = new Moco(tiny, new Rng(0));
    const q = values(moco.query.namedTensors());
    const k = values(moco.key.namedTensors());
    expect([...k.keys()]).toEqual([...q.keys()]);
    for (const [name, v] of q) expect(k.get(name)).toEqual(v);
    expect(moco.key.params.get('conv1.weight')!.trainable).toBe(false);
    moco.dispose();
  });

  it('momentum update moves parameters by (1-m) towards the query and leaves BN buffers alone', () => {
    const moco = new Moco({ ...tiny, m: 0.9 }, new Rng(0));
    const rng = new Rng(1);
    const x = images(rng);
    moco.step(x, images(rng), 0.1, rng); // query and key now differ, BN buffers of both moved
    const q = values(moco.query.params);
    const k = values(moco.key.params);
    const kb = values(moco.key.buffers);
    moco.momentumUpdate();
    for (const [name, v] of moco.key.params) {
      const got = v.dataSync();
      const want = k.get(name)!.map((kv, i) => 0.9 * kv + 0.1 * q.get(name)![i]!);
      got.forEach((g, i) => expect(g).toBeCloseTo(want[i]!, 5));
    }
    for (const [name, v] of moco.key.buffers) expect(v.dataSync()).toEqual(kb.get(name));
    // Each encoder keeps its own statistics: they are not equal after a step.
    const qm = moco.query.buffers.get('bn1.running_mean')!.dataSync();
    const km = moco.key.buffers.get('bn1.running_mean')!.dataSync();
    expect(Array.from(qm)).not.toEqual(Array.from(km));
    moco.dispose();
  });

  it('keeps the tensor count flat across steps and runs a short last batch', () => {
    const moco = new Moco({ ...tiny, K: 20 }, new Rng(0));
    const rng = new Rng(2);
    const [a, b] = [images(rng), images(rng)];
    moco.step(a, b, 0.1, rng); // creates the momentum slots
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) moco.step(a, b, 0.1, rng);
    expect(tf.memory().numTensors).toBe(before);
    const [c, d] = [images(rng, 5), images(rng, 5)]; // 5 divides neither K nor bn_splits
    const r = moco.step(c, d, 0.1, rng);
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(moco.queue.ptr).toBe((4 * 8 + 5) % 20);
    tf.dispose([a, b, c, d]);
    moco.dispose();
  });

  it('the loss rises from ln(K+1)-ish and pretext accuracy is a fraction', () => {
    const moco = new Moco(tiny, new Rng(0));
    const rng = new Rng(3);
    const r = moco.step(images(rng), images(rng), 0.06, rng);
    expect(r.loss).toBeGreaterThan(0);
    expect(r.pretextAccuracy).toBeGreaterThanOrEqual(0);
    expect(r.pretextAccuracy).toBeLessThanOrEqual(1);
    expect(r.featureStd).toBeGreaterThan(0);
    moco.dispose();
  });

  it('resumes from saved bytes exactly as the uninterrupted run', async () => {
    const run = new Moco(tiny, new Rng(7));
    const rng = new Rng(8);
    const data = new Rng(9);
    const batches = Array.from({ length: 5 }, () => [images(data), images(data)] as const);
    for (const [a, b] of batches.slice(0, 2)) run.step(a, b, 0.06, rng);
    const bytes = await saveTrainingState(run, { step: 2, epoch: 0, batchInEpoch: 2, rng: rng.state() });
    for (const [a, b] of batches.slice(2)) run.step(a, b, 0.06, rng);

    const resumed = loadTrainingState(bytes);
    expect(resumed.progress.step).toBe(2);
    for (const [a, b] of batches.slice(2)) resumed.moco.step(a, b, 0.06, resumed.rng);
    const all = (m: Moco) =>
      new Map([
        ...[...m.query.namedTensors()].map(([k, v]) => [`q/${k}`, v] as const),
        ...[...m.key.namedTensors()].map(([k, v]) => [`k/${k}`, v] as const),
        ['queue', m.queue.keys] as const,
      ]);
    const want = all(run);
    for (const [name, v] of all(resumed.moco)) {
      const a = v.dataSync();
      const b = want.get(name)!.dataSync();
      let diff = 0;
      for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
      expect(diff, name).toBeLessThanOrEqual(1e-5);
    }
    expect(resumed.moco.queue.ptr).toBe(run.queue.ptr);
    run.dispose();
    resumed.moco.dispose();
  });
});
