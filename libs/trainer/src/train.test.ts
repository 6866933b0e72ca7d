import type { ImageDataset } from '@moco/data';
import { cifarDemoDefaults, Rng, tf, type MocoConfig, type Moco } from '@moco/moco';
import { beforeAll, describe, expect, it } from 'vitest';
import { train, type EpochInfo, type RunSettings } from './train.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function syntheticDataset(n: number, size: number, seed: number): ImageDataset {
  const rng = new Rng(seed);
  const pixels = new Uint8Array(n * size * size * 3).map(() => rng.int(256));
  return { count: n, height: size, width: size, channels: 3, pixels, labels: Int32Array.from({ length: n }, (_, i) => i % 2) };
}

const config: MocoConfig = { ...cifarDemoDefaults, width: 2, dim: 4, K: 16, bnSplits: 2, batchSize: 4, epochs: 2 };
const settings: RunSettings = { seed: 5, augmentation: 'v2', transform: { size: 8, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } };
const ds = syntheticDataset(10, 8, 1); // 2 full batches an epoch; the last 2 images are dropped

function maxDiff(a: Moco, b: Moco): number {
  const pairs = [
    [a.query.namedTensors(), b.query.namedTensors()],
    [a.key.namedTensors(), b.key.namedTensors()],
    [new Map([['queue', a.queue.keys]]), new Map([['queue', b.queue.keys]])],
  ] as const;
  let diff = 0;
  for (const [ma, mb] of pairs) {
    for (const [name, v] of ma) {
      const x = v.dataSync();
      const y = mb.get(name)!.dataSync();
      for (let i = 0; i < x.length; i++) diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
    }
  }
  return diff;
}

describe('train', () => {
  it('resumed from any checkpoint, ends with the same weights and epoch reports as the uninterrupted run', async () => {
    const states: Uint8Array[] = [];
    const epochs: EpochInfo[] = [];
    const full = await train({
      train: ds,
      config,
      settings,
      checkpointEvery: 1,
      onCheckpoint: (s) => void states.push(s),
      onEpoch: (e) => void epochs.push(e),
    });
    expect(full.progress.step).toBe(4);
    expect(states).toHaveLength(5); // every step, and the end

    // From the middle of epoch 1 and from the end of an epoch (before its report).
    for (const at of [1, 2]) {
      const resumedEpochs: EpochInfo[] = [];
      const resumed = await train({ train: ds, resume: states[at - 1]!, onEpoch: (e) => void resumedEpochs.push(e) });
      expect(resumed.progress.step).toBe(4);
      expect(maxDiff(resumed.moco, full.moco)).toBeLessThanOrEqual(1e-5);
      const last = resumedEpochs.at(-1)!;
      expect(last.epoch).toBe(2);
      expect(last.loss).toBeCloseTo(epochs[1]!.loss, 5);
      resumed.moco.dispose();
    }
    full.moco.dispose();
  });

  it('stops between steps when aborted and hands back a checkpoint that continues the run', async () => {
    const controller = new AbortController();
    let saved: Uint8Array | null = null;
    const stopped = await train({
      train: ds,
      config,
      settings,
      signal: controller.signal,
      onStep: (s) => {
        if (s.step === 3) controller.abort();
      },
      onCheckpoint: (s) => void (saved = s),
    });
    expect(stopped.stopped).toBe(true);
    expect(stopped.progress.step).toBe(3);
    const rest = await train({ train: ds, resume: saved! });
    expect(rest.progress.step).toBe(4);
    const full = await train({ train: ds, config, settings });
    expect(maxDiff(rest.moco, full.moco)).toBeLessThanOrEqual(1e-5);
    for (const r of [stopped, rest, full]) r.moco.dispose();
  });

  it('stops when the signal is aborted from outside the loop (a timer, a message), not only from a callback', async () => {
    const controller = new AbortController();
    const stopped = await train({
      train: ds,
      config: { ...config, epochs: 20 },
      settings,
      signal: controller.signal,
      onStep: (s) => {
        if (s.step === 1) setTimeout(() => controller.abort(), 0);
      },
    });
    expect(stopped.stopped).toBe(true);
    expect(stopped.progress.step).toBeLessThan(40);
    stopped.moco.dispose();
  });

  it('saves a stop that lands right after a periodic checkpoint once, not twice', async () => {
    const controller = new AbortController();
    const steps: number[] = [];
    const stopped = await train({
      train: ds,
      config,
      settings,
      signal: controller.signal,
      checkpointEvery: 3,
      onStep: (s) => {
        if (s.step === 3) controller.abort();
      },
      onCheckpoint: (_, p) => void steps.push(p.step),
    });
    expect(stopped.stopped).toBe(true);
    expect(steps).toEqual([3]);
    stopped.moco.dispose();
  });

  it("saves a checkpoint at an epoch's end when onEpoch asks for one, and the last one stands for the final state", async () => {
    const saved: { step: number; epoch: number; batchInEpoch: number }[] = [];
    const result = await train({
      train: ds,
      config,
      settings,
      onEpoch: (e) => ({ checkpoint: e.epoch >= 1 }),
      onCheckpoint: (_, p) => void saved.push({ step: p.step, epoch: p.epoch, batchInEpoch: p.batchInEpoch }),
    });
    // One per epoch end (2 steps an epoch), and no second copy of the final state.
    expect(saved).toEqual([
      { step: 2, epoch: 1, batchInEpoch: 0 },
      { step: 4, epoch: 2, batchInEpoch: 0 },
    ]);
    result.moco.dispose();
  });

  it('continues a finished run for more epochs, and its checkpoints keep the new length', async () => {
    let finished: Uint8Array | null = null;
    const first = await train({ train: ds, config, settings, onCheckpoint: (s) => void (finished = s) });
    const states: Uint8Array[] = [];
    const longer = await train({ train: ds, resume: finished!, epochs: 3, checkpointEvery: 1, onCheckpoint: (s) => void states.push(s) });
    expect(longer.progress).toMatchObject({ step: 6, epoch: 3 });
    const again = await train({ train: ds, resume: states[0]! });
    expect(again.progress).toMatchObject({ step: 6, epoch: 3 });
    expect(maxDiff(again.moco, longer.moco)).toBeLessThanOrEqual(1e-5);
    await expect(train({ train: ds, resume: finished!, epochs: 1 })).rejects.toThrow(/done 2 epochs, more than 1/);
    for (const r of [first, longer, again]) r.moco.dispose();
  });

  it('rejects a dataset whose channels do not match the encoder', async () => {
    const gray = { ...ds, channels: 1 as const, pixels: ds.pixels.subarray(0, 10 * 64) };
    await expect(train({ train: gray, config, settings })).rejects.toThrow(/1 channel\(s\) but the encoder expects 3/);
  });
});
