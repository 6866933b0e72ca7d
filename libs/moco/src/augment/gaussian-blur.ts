/**
 * SimCLR's kernel size for a size x size image: 10% of it, made odd (radius floor(size/10 / 2)), so
 * 23 taps at 224; at least 3 so that small images (32 px: 3 taps) are still blurred.
 */
export function blurKernelSize(size: number): number {
  return 2 * Math.max(1, Math.floor(Math.floor(size / 10) / 2)) + 1;
}

/** torchvision's `_get_gaussian_kernel1d`: exp(-x^2 / 2 sigma^2) at integer offsets, summing to 1. */
export function gaussianKernel1d(kernelSize: number, sigma: number): Float64Array {
  const radius = (kernelSize - 1) / 2;
  const kernel = Float64Array.from({ length: kernelSize }, (_, i) => Math.exp(-0.5 * ((i - radius) / sigma) ** 2));
  const total = kernel.reduce((a, b) => a + b, 0);
  return kernel.map((v) => v / total);
}

/** Index of pixel `i` after torch's 'reflect' padding of a length-n axis (edge not repeated). */
function reflect(i: number, n: number): number {
  if (i < 0) return -i;
  return i >= n ? 2 * (n - 1) - i : i;
}

/** Where each tap reads along a length-n axis under reflect padding: tap k of output i reads pixel [i * taps + k]. */
function tapIndices(n: number, taps: number): Int32Array {
  const radius = (taps - 1) / 2;
  return Int32Array.from({ length: n * taps }, (_, j) => reflect(Math.floor(j / taps) + (j % taps) - radius, n));
}

/**
 * Gaussian blur with this sigma (torchvision's GaussianBlur: kernel of blurKernelSize(size) taps,
 * reflect padding) of one square size x size x channels image from `offset` in `x`, in place;
 * separable: rows into `scratch` (at least size*size*channels long), then columns back.
 */
export function gaussianBlur(x: Float32Array, offset: number, size: number, channels: number, sigma: number, scratch: Float32Array): void {
  const taps = blurKernelSize(size);
  if (size <= (taps - 1) / 2) throw new Error(`gaussianBlur: ${size} px is too small to reflect-pad`);
  const kernel = gaussianKernel1d(taps, sigma);
  const index = tapIndices(size, taps);
  const row = size * channels;
  // Along each row (x) into scratch, then along each column (y) back: each output written once.
  for (let y = 0; y < size; y++) {
    const line = offset + y * row;
    for (let xi = 0; xi < size; xi++) {
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let k = 0; k < taps; k++) sum += kernel[k]! * x[line + index[xi * taps + k]! * channels + c]!;
        scratch[y * row + xi * channels + c] = sum;
      }
    }
  }
  for (let y = 0; y < size; y++) {
    for (let j = 0; j < row; j++) {
      let sum = 0;
      for (let k = 0; k < taps; k++) sum += kernel[k]! * scratch[index[y * taps + k]! * row + j]!;
      x[offset + y * row + j] = sum;
    }
  }
}
