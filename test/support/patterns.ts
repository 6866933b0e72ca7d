import type { ImageDataset } from '@moco/data';

/** Four pattern classes (stripes both ways, a square, a diagonal) with noise, 16x16 gray: labelled and learnable. */
export function patterns(count: number, seed: number): ImageDataset {
  const size = PATTERN_SIZE;
  let s = seed;
  const noise = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) % 64) - 32;
  const pixels = new Uint8Array(count * size * size);
  const labels = Int32Array.from({ length: count }, (_, i) => i % 4);
  labels.forEach((c, i) => {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const on = [y % 4 < 2, x % 4 < 2, x > 4 && x < 11 && y > 4 && y < 11, Math.abs(x - y) < 3][c]!;
        pixels[i * size * size + y * size + x] = Math.max(0, Math.min(255, (on ? 200 : 40) + noise()));
      }
    }
  });
  return { count, height: size, width: size, channels: 1, pixels, labels };
}

export const PATTERN_SIZE = 16;
