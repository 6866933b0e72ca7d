import { beforeAll, describe, expect, it } from 'vitest';
import { useCpuBackend } from '../testing/setup-cpu.js';
import { accuracy, knnPredict, normalizeRows } from './knn.js';

beforeAll(useCpuBackend);

describe('weighted kNN', () => {
  it('weights votes by exp(sim / t): one very close neighbour outvotes two far ones', async () => {
    // 2-d unit bank: class 0 at angle 0, class 1 at +-60 degrees.
    const c = Math.cos(Math.PI / 3);
    const s = Math.sin(Math.PI / 3);
    const bank = { data: Float32Array.from([1, 0, c, s, c, -s]), dim: 2, labels: Int32Array.from([0, 1, 1]) };
    const query = Float32Array.from([1, 0]);
    // t = 0.1: class 0 scores e^10, class 1 scores 2e^5 -> class 0.
    expect(Array.from(await knnPredict(bank, query, { k: 3, t: 0.1, numClasses: 2 }))).toEqual([0]);
    // t = 10: e^0.1 ~ 1.105 against 2e^0.05 ~ 2.10 -> class 1 (the majority).
    expect(Array.from(await knnPredict(bank, query, { k: 3, t: 10, numClasses: 2 }))).toEqual([1]);
    // k = 1 keeps only the nearest.
    expect(Array.from(await knnPredict(bank, query, { k: 1, t: 10, numClasses: 2 }))).toEqual([0]);
  });

  it('handles k larger than the bank and queries in several chunks', async () => {
    const bank = { data: normalizeRows(Float32Array.from([1, 0.1, 0.1, 1]), 2), dim: 2, labels: Int32Array.from([3, 5]) };
    const queries = normalizeRows(Float32Array.from([1, 0, 0, 1, 2, 0.5, 0.3, 2]), 2);
    const predictions = await knnPredict(bank, queries, { k: 200, t: 0.1, numClasses: 6, chunk: 3 });
    expect(Array.from(predictions)).toEqual([3, 5, 3, 5]);
    expect(accuracy(predictions, Int32Array.from([3, 5, 5, 5]))).toBe(0.75);
  });
});
