import { describe, expect, it } from 'vitest';
import { learningRate } from './schedule.js';

describe('learningRate', () => {
  it('cosine: base at 0, half at the midpoint, near 0 at the end', () => {
    const s = { kind: 'cosine' } as const;
    expect(learningRate(0.06, s, 0, 200)).toBe(0.06);
    expect(learningRate(0.06, s, 100, 200)).toBeCloseTo(0.03, 12);
    expect(learningRate(0.06, s, 50, 200)).toBeCloseTo(0.06 * 0.5 * (1 + Math.SQRT1_2), 12);
    expect(learningRate(0.06, s, 199, 200)).toBeCloseTo(0.06 * 0.5 * (1 + Math.cos((Math.PI * 199) / 200)), 12);
  });

  it('step: x gamma at each milestone reached (MoCo v1: 120, 160)', () => {
    const s = { kind: 'step', milestones: [120, 160], gamma: 0.1 } as const;
    expect(learningRate(0.03, s, 119, 200)).toBe(0.03);
    expect(learningRate(0.03, s, 120, 200)).toBeCloseTo(0.003, 12);
    expect(learningRate(0.03, s, 160, 200)).toBeCloseTo(0.0003, 12);
  });
});
