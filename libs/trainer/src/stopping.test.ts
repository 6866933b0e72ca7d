import { describe, expect, it } from 'vitest';
import { BestEvaluation, CollapseWatch } from './stopping.js';

describe('BestEvaluation', () => {
  it('names the best evaluation and runs out of patience after that many without a gain above min_delta', () => {
    const e = new BestEvaluation(0.01);
    expect(e.observe({ step: 8, value: 0.5 })).toBe(true);
    expect(e.observe({ step: 16, value: 0.505 })).toBe(false); // not above min_delta
    expect(e.exhausted(2)).toBe(false);
    expect(e.observe({ step: 24, value: 0.4 })).toBe(false);
    expect(e.exhausted(2)).toBe(true);
    expect(e.best).toEqual({ step: 8, value: 0.5 });
  });

  it('continues from the evaluations of an earlier attempt', () => {
    const e = new BestEvaluation(0, [{ step: 8, value: 0.6 }, { step: 16, value: 0.5 }]);
    expect(e).toMatchObject({ best: { step: 8, value: 0.6 }, sinceBest: 1 });
    expect(e.observe({ step: 24, value: 0.7 })).toBe(true);
    expect(e.sinceBest).toBe(0);
  });
});

describe('CollapseWatch', () => {
  it('fires once feature_std stays under the threshold for the given consecutive steps (NaN counts)', () => {
    const w = new CollapseWatch(0.05, 3);
    expect([0.01, 0.01, 0.2, 0.01, Number.NaN].map((v) => w.observe(v))).toEqual([false, false, false, false, false]);
    expect(w.observe(0.001)).toBe(true);
  });
});
