import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { useCpuBackend } from '../testing/setup-cpu.js';
import { linearProbe } from './linear-probe.js';

beforeAll(useCpuBackend);

/** Points around 3 well separated centres in 4-d. */
function blobs(n: number, rng: Rng) {
  const centres = [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]];
  const data = new Float32Array(n * 4);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 3;
    for (let j = 0; j < 4; j++) data[i * 4 + j] = centres[i % 3]![j]! + 0.3 * rng.normal();
  }
  return { data, labels, dim: 4 };
}

describe('linearProbe', () => {
  it('learns a separable problem', async () => {
    const rng = new Rng(0);
    const r = await linearProbe(blobs(300, rng), blobs(90, rng), { numClasses: 3, epochs: 20, lr: 0.5 });
    expect(r.accuracy).toBeGreaterThan(0.95);
    expect(r.loss).toBeLessThan(0.2);
  });

  it('stops with an error naming the learning rate when it diverges', async () => {
    const rng = new Rng(1);
    const big = blobs(60, rng);
    big.data = big.data.map((v) => v * 1e18);
    await expect(linearProbe(big, blobs(30, rng), { numClasses: 3, epochs: 3, lr: 1e20 })).rejects.toThrow(/lower the learning rate/);
  });
});
