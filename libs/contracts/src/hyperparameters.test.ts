import { describe, expect, it } from 'vitest';
import { Hyperparameters, HyperparametersInput, resolveHyperparameters, totalSteps } from './index.js';

const fmnist = { height: 28, width: 28, channels: 1, imageCount: 60000 };
const cifar = { height: 32, width: 32, channels: 3, imageCount: 50000 };
const imagenet = { height: 224, width: 224, channels: 3, imageCount: 1_281_167 };

describe('resolveHyperparameters', () => {
  it('gives the published recipes back on the datasets they were tuned for (small images with the symmetric loss)', () => {
    // The CIFAR-10 demo on CIFAR-10's 50 000 images, MoCo v2 on ImageNet's.
    const small = resolveHyperparameters({}, cifar);
    expect(small.problems).toEqual([]);
    expect(small.value).toMatchObject({ encoder: 'resnet18', stem: 'cifar', K: 4096, m: 0.99, T: 0.1, batch_size: 512, lr: 0.06, bn_splits: 8, epochs: 200, knn_k: 200, augmentation: 'v2', image_size: 32, symmetric: true });
    expect(resolveHyperparameters({}, fmnist).value).toMatchObject({ K: 4096, batch_size: 512, lr: 0.06, epochs: 200, augmentation: 'gray', image_size: 28, symmetric: true });
    const large = resolveHyperparameters({}, imagenet);
    expect(large.problems).toEqual([]);
    expect(large.value).toMatchObject({ encoder: 'resnet50', stem: 'imagenet', head: 'v2', K: 65536, m: 0.999, T: 0.2, batch_size: 256, lr: 0.03, epochs: 200, augmentation: 'v2', symmetric: false });
    expect(Hyperparameters.parse(large.value)).toEqual(large.value);
  });

  it('scales batch, lr, bn_splits, K, epochs and knn_k to the image count', () => {
    const demo = resolveHyperparameters({}, { ...fmnist, imageCount: 4096 });
    // 64 steps per epoch, the demo's lr (small images), K near 8% of the images in steps of 2 x 64 keys.
    expect(demo.value).toMatchObject({ batch_size: 64, bn_splits: 8, K: 384, epochs: 304, knn_k: 200, lr: 0.06, symmetric: true });
    expect([demo.problems, demo.warnings]).toEqual([[], []]);
    const tiny = resolveHyperparameters({}, { ...fmnist, imageCount: 1000 });
    expect(tiny.value).toMatchObject({ batch_size: 32, bn_splits: 4, K: 64, epochs: 626, knn_k: 100 });
    expect([tiny.problems, tiny.warnings]).toEqual([[], []]);
    // Large images: lr on MoCo v2's line (0.03 per 256 images).
    const photos = resolveHyperparameters({}, { ...imagenet, imageCount: 5000 });
    expect(photos.value).toMatchObject({ encoder: 'resnet50', batch_size: 64, bn_splits: 8, K: 384, epochs: 249, knn_k: 200, symmetric: false });
    expect(photos.value.lr).toBeCloseTo(0.0075, 10);
    // The fewest images a job takes: nothing derived reaches the image count.
    for (const imageCount of [2, 3, 5, 17, 33, 100]) {
      const r = resolveHyperparameters({}, { ...fmnist, imageCount });
      expect(r.problems).toEqual([]);
      expect(r.value.K).toBeLessThanOrEqual(imageCount);
      expect(r.value.knn_k).toBeLessThan(imageCount);
      expect(r.value.batch_size % r.value.bn_splits).toBe(0);
    }
  });

  it('derives K, lr, bn_splits and the loss from what the client chose', () => {
    const r = resolveHyperparameters({ batch_size: 128 }, { ...fmnist, imageCount: 10000 });
    // 2 x 128 keys per step (symmetric); 8% of 10 000 is about 3 steps of them.
    expect(r.value).toMatchObject({ batch_size: 128, K: 768, bn_splits: 8, lr: 0.06, symmetric: true });
    expect(r.problems).toEqual([]);
    const asymmetric = resolveHyperparameters({ batch_size: 128, symmetric: false }, { ...fmnist, imageCount: 10000 });
    expect(asymmetric.value).toMatchObject({ K: 768, symmetric: false });
    // A K that holds one batch of keys but not two keeps the asymmetric loss instead of being refused.
    const small = resolveHyperparameters({ batch_size: 128, K: 128 }, { ...fmnist, imageCount: 10000 });
    expect([small.value.symmetric, small.problems]).toEqual([false, []]);
    const photos = resolveHyperparameters({ batch_size: 128 }, { ...imagenet, imageCount: 10000 });
    expect(photos.value.lr).toBeCloseTo(0.015, 10);
  });

  it('warns about known-bad settings without refusing them', () => {
    const r = resolveHyperparameters({ K: 4096, batch_size: 64, bn_splits: 16, knn_k: 200 }, { ...fmnist, imageCount: 200 });
    expect(r.problems).toEqual([]);
    expect(r.warnings.map((w) => w.field)).toEqual(['hyperparameters.K', 'hyperparameters.knn_k', 'hyperparameters.bn_splits']);
    expect(r.warnings[0]!.message).toMatch(/at least the dataset's 200 images/);
    expect(r.warnings[2]!.message).toMatch(/leaves 4 images per BN split/);
    expect(resolveHyperparameters({ K: 192, batch_size: 64, bn_splits: 8, knn_k: 19 }, { ...fmnist, imageCount: 200 }).warnings).toEqual([]);
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
