import { describe, expect, it } from 'vitest';
import { meanStd } from './dataset-stats.js';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, FASHION_MNIST_SUBSET, findFashionMnist, loadFashionMnist } from './fashion-mnist.js';
import { readError } from './test-fixtures.js';

// The Debian package dataset-fashion-mnist installs the real files.
describe('Fashion-MNIST', () => {
  it('loads the full training split', async () => {
    const ds = await loadFashionMnist('train');
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([60000, 28, 28, 1]);
    expect(ds.pixels.length).toBe(60000 * 28 * 28);
    expect(ds.classNames).toEqual(FASHION_MNIST_CLASSES);
    const perClass = new Array(10).fill(0);
    for (const label of ds.labels!) perClass[label] += 1;
    expect(perClass).toEqual(new Array(10).fill(6000));
    // Known statistics of Fashion-MNIST's training set.
    const { mean, std } = meanStd(ds);
    expect(mean[0]).toBeCloseTo(0.286, 3);
    expect(std[0]).toBeCloseTo(0.353, 3);
  });

  it('loads the test split with a limit and conversions', async () => {
    const ds = await loadFashionMnist('test', { limit: 100, channels: 3, imageSize: 32 });
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([100, 32, 32, 3]);
    expect(ds.labels!.length).toBe(100);
    expect(ds.labels!.every((l) => l >= 0 && l <= 9)).toBe(true);
    const full = await loadFashionMnist('test');
    expect(full.count).toBe(10000);
  });

  it('reports a missing installation', async () => {
    expect((await readError(loadFashionMnist('train', { dir: '/nonexistent' }))).code).toBe('not_found');
  });

  it('finds the full set where it is installed', async () => {
    expect(await findFashionMnist()).toMatchObject({ dir: FASHION_MNIST_DIR, subset: false });
  });

  it('falls back to the shipped subset: the first images of each class, balanced, the same pixels', async () => {
    const source = await findFashionMnist('/nonexistent');
    expect(source).toMatchObject({ dir: FASHION_MNIST_SUBSET.dir, subset: true });
    expect(source.description).toMatch(/not in \/nonexistent; using the subset .*5000 training and 2000 test images/);
    for (const split of ['train', 'test'] as const) {
      const [subset, full] = await Promise.all([loadFashionMnist(split, { dir: source.dir }), loadFashionMnist(split)]);
      const perClass = FASHION_MNIST_SUBSET.perClass[split];
      expect(subset.count).toBe(10 * perClass);
      // The images the build script keeps, recomputed from the full set: the first perClass of each class.
      const taken = new Array(10).fill(0);
      const keep = [...full.labels!.keys()].filter((i) => taken[full.labels![i]!]++ < perClass);
      expect([...subset.labels!]).toEqual(keep.map((i) => full.labels![i]!));
      const size = 28 * 28;
      keep.forEach((from, to) => {
        if (!Buffer.from(subset.pixels.subarray(to * size, (to + 1) * size)).equals(full.pixels.subarray(from * size, (from + 1) * size))) {
          throw new Error(`${split} image ${to} differs from full image ${from}`);
        }
      });
    }
  });
});
