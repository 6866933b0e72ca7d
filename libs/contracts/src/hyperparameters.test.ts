import { describe, expect, it } from 'vitest';
import { Hyperparameters, HyperparametersInput, resolveHyperparameters, totalSteps } from './index.js';

const fmnist = { height: 28, width: 28, channels: 1, imageCount: 60000 };
const photos = { height: 224, width: 224, channels: 3, imageCount: 5000 };

describe('resolveHyperparameters', () => {
  it('uses the CIFAR demo recipe for small images and MoCo v2 for large ones', () => {
    const small = resolveHyperparameters({}, fmnist);
    expect(small.problems).toEqual([]);
    expect(small.value).toMatchObject({ encoder: 'resnet18', stem: 'cifar', K: 4096, m: 0.99, T: 0.1, batch_size: 512, lr: 0.06, augmentation: 'gray', image_size: 28 });
    const large = resolveHyperparameters({}, photos);
    expect(large.problems).toEqual([]);
    expect(large.value).toMatchObject({ encoder: 'resnet50', stem: 'imagenet', head: 'v2', K: 65536, m: 0.999, T: 0.2, batch_size: 256, lr: 0.03, augmentation: 'v2' });
    expect(Hyperparameters.parse(large.value)).toEqual(large.value);
  });

  it('keeps what the client set and names each cross-field problem', () => {
    const r = resolveHyperparameters({ K: 100, batch_size: 128, bn_splits: 3, stem: 'imagenet', image_size: 16 }, fmnist);
    expect(r.value.K).toBe(100);
    const fields = r.problems.map((p) => p.field).sort();
    expect(fields).toEqual(['hyperparameters.K', 'hyperparameters.bn_splits', 'hyperparameters.image_size']);
    expect(r.problems.find((p) => p.field === 'hyperparameters.K')!.message).toMatch(/at least the keys enqueued per step \(128\)/);
  });

  it('checks the batch against the dataset, the augmentation against channels, and milestones', () => {
    const r = resolveHyperparameters({ batch_size: 64, augmentation: 'v2', schedule: 'step', lr_milestones: [5, 3], epochs: 10 }, { ...fmnist, imageCount: 50 });
    expect(r.problems.map((p) => p.field).sort()).toEqual([
      'hyperparameters.augmentation',
      'hyperparameters.batch_size',
      'hyperparameters.lr_milestones',
    ]);
  });

  it('rejects unknown and out-of-range fields at the schema', () => {
    expect(HyperparametersInput.safeParse({ kk: 1 }).success).toBe(false);
    expect(HyperparametersInput.safeParse({ m: 1 }).success).toBe(false);
    expect(HyperparametersInput.safeParse({ m: 0.999 }).success).toBe(true);
  });

  it('counts steps with the short batch dropped', () => {
    expect(totalSteps(resolveHyperparameters({ batch_size: 64, epochs: 3 }, { ...fmnist, imageCount: 200 }).value, 200)).toBe(9);
  });

  it('names epochs when the run would count more steps than a step column holds', () => {
    const huge = { ...fmnist, imageCount: 2_000_000_000 };
    expect(resolveHyperparameters({ batch_size: 8, epochs: 8 }, huge).problems).toEqual([]);
    expect(resolveHyperparameters({ batch_size: 8, epochs: 9 }, huge).problems.map((p) => p.field)).toEqual(['hyperparameters.epochs']);
  });
});
