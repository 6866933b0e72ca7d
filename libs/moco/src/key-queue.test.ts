import { beforeAll, describe, expect, it } from 'vitest';
import { KeyQueue } from './key-queue.js';
import { Rng } from './rng.js';
import { useCpuBackend } from './testing/setup-cpu.js';
import * as tf from './tf.js';

beforeAll(useCpuBackend);

/** n keys of dimension 2 whose values name them: key j is [base + j, -(base + j)]. */
const keys = (base: number, n: number) =>
  tf.tensor2d(Array.from({ length: n }, (_, j) => [base + j, -(base + j)]));
const firstRow = (q: KeyQueue) => Array.from(q.keys.dataSync().slice(0, q.size));

describe('KeyQueue', () => {
  it('starts random-normal and L2-normalised along dim', () => {
    const q = new KeyQueue(16, 32, new Rng(3));
    const norms = q.keys.square().sum(0).sqrt().dataSync();
    norms.forEach((v) => expect(v).toBeCloseTo(1, 5));
    expect(q.ptr).toBe(0);
    q.dispose();
  });

  it('fills columns in order and wraps the pointer when K is a multiple of the batch', () => {
    const q = new KeyQueue(2, 6, tf.zeros([2, 6]) as tf.Tensor2D);
    q.enqueue(keys(1, 3));
    expect(firstRow(q)).toEqual([1, 2, 3, 0, 0, 0]);
    expect(q.ptr).toBe(3);
    q.enqueue(keys(4, 3));
    expect(firstRow(q)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(q.ptr).toBe(0);
    q.enqueue(keys(7, 3));
    expect(firstRow(q)).toEqual([7, 8, 9, 4, 5, 6]);
    expect(Array.from(q.keys.dataSync().slice(6))).toEqual([-7, -8, -9, -4, -5, -6]);
    q.dispose();
  });

  it('wraps a batch that does not divide K across the end', () => {
    const q = new KeyQueue(2, 5, tf.zeros([2, 5]) as tf.Tensor2D);
    q.enqueue(keys(1, 3)); // ptr 3
    q.enqueue(keys(4, 3)); // 4 -> col 3, 5 -> col 4, 6 -> col 0
    expect(firstRow(q)).toEqual([6, 2, 3, 4, 5]);
    expect(q.ptr).toBe(1);
    q.enqueue(keys(7, 2)); // a short last batch
    expect(firstRow(q)).toEqual([6, 7, 8, 4, 5]);
    expect(q.ptr).toBe(3);
    q.dispose();
  });

  it('rejects more keys than the queue holds', () => {
    const q = new KeyQueue(2, 2, tf.zeros([2, 2]) as tf.Tensor2D);
    expect(() => q.enqueue(keys(0, 3))).toThrow(/cannot enqueue 3 keys into a queue of 2/);
    q.dispose();
  });
});
