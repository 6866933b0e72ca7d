import { describe, expect, it } from 'vitest';
import { meanStd } from './dataset-stats.js';

describe('meanStd', () => {
  it('gives per-channel mean and population std on the 0..1 scale', () => {
    // Two 1x1 RGB images: R = 0 and 255, G = 51 both times, B = 102 and 204.
    const { mean, std } = meanStd({ count: 2, height: 1, width: 1, channels: 3, pixels: Uint8Array.of(0, 51, 102, 255, 51, 204) });
    expect(mean[0]).toBeCloseTo(0.5, 12);
    expect(mean[1]).toBeCloseTo(0.2, 12);
    expect(mean[2]).toBeCloseTo(0.6, 12);
    expect(std[0]).toBeCloseTo(0.5, 12);
    expect(std[1]).toBeCloseTo(0, 12);
    expect(std[2]).toBeCloseTo(0.2, 12);
  });
});
