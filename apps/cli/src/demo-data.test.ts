import { FASHION_MNIST_DIR, FASHION_MNIST_SUBSET, loadFashionMnist } from '@moco/data';
import { describe, expect, it } from 'vitest';
import { loadDemoData } from './demo-data.js';

describe("the demo's data", () => {
  it('comes from the full set where it is installed', async () => {
    const data = await loadDemoData({ train: 4096, test: 2000 }, {});
    expect(data.source).toMatchObject({ dir: FASHION_MNIST_DIR, subset: false });
    const full = await loadFashionMnist('train', { limit: 4096 });
    expect(Buffer.from(data.train.pixels).equals(full.pixels)).toBe(true);
  });

  it('comes from the shipped subset where FASHION_MNIST_DIR holds no Fashion-MNIST, and says so', async () => {
    const data = await loadDemoData({ train: 4096, test: 2000 }, { FASHION_MNIST_DIR: '/nonexistent/fashion-mnist' });
    expect(data.source).toMatchObject({ dir: FASHION_MNIST_SUBSET.dir, subset: true });
    expect(data.source.description).toMatch(/full set is not in \/nonexistent\/fashion-mnist; using the subset shipped with the repository/);
    expect([data.train.count, data.test.count]).toEqual([4096, 2000]);
    const subset = await loadFashionMnist('train', { dir: FASHION_MNIST_SUBSET.dir, limit: 4096 });
    expect(Buffer.from(data.train.pixels).equals(subset.pixels)).toBe(true);
    // Every class in the demo's training images, none missing (the subset keeps each class's first images).
    expect(new Set(data.train.labels).size).toBe(10);
    await expect(loadDemoData({ train: 6000, test: 2000 }, { FASHION_MNIST_DIR: '/nonexistent' })).rejects.toThrow(
      /--train-images 6000: .* which has 5000; install the full set for more/,
    );
  });
});
