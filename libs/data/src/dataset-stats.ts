import type { ImageDataset } from './image-dataset.js';

/**
 * Per-channel mean and (population) standard deviation on the 0..1 scale, for input normalisation. One pass builds a
 * 256-bin histogram per channel, so the sums are exact and nothing dataset-sized is allocated.
 */
export function meanStd(ds: ImageDataset): { mean: number[]; std: number[] } {
  const { pixels, channels } = ds;
  if (pixels.length === 0) throw new RangeError('meanStd of an empty dataset');
  const histogram = new Float64Array(channels * 256);
  for (let i = 0; i < pixels.length; i += channels) {
    for (let c = 0; c < channels; c++) {
      const bin = c * 256 + pixels[i + c]!;
      histogram[bin] = histogram[bin]! + 1;
    }
  }
  const perChannel = pixels.length / channels;
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    let sumSquares = 0;
    for (let v = 0; v < 256; v++) {
      const n = histogram[c * 256 + v]!;
      sum += n * v;
      sumSquares += n * v * v;
    }
    const m = sum / perChannel;
    mean.push(m / 255);
    std.push(Math.sqrt(Math.max(0, sumSquares / perChannel - m * m)) / 255);
  }
  return { mean, std };
}
