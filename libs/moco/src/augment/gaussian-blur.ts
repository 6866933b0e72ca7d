import * as tf from '../tf.js';

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

/**
 * Writes the n x n matrix B with (B @ column) = the column convolved with `kernel` under reflect
 * padding (torchvision's GaussianBlur padding) into `out` from `offset`; a null kernel gives I.
 */
function writeBlurMatrix(out: Float32Array, offset: number, n: number, kernel: Float64Array | null): void {
  if (kernel === null) {
    for (let i = 0; i < n; i++) out[offset + i * n + i] = 1;
    return;
  }
  const radius = (kernel.length - 1) / 2;
  for (let i = 0; i < n; i++) {
    kernel.forEach((w, k) => {
      out[offset + i * n + reflect(i + k - radius, n)]! += w;
    });
  }
}

/**
 * Gaussian blur of each square image with its own sigma (null: left as is), separable and batched:
 * per-image [S,S] blur matrices multiply the rows ([N,S,S*C]), then the columns (after swapping H and W).
 * Dense matrices cost O(S) per pixel instead of O(kernel): fine for the 28-96 px images this targets.
 */
export function gaussianBlur(x: tf.Tensor4D, sigmas: readonly (number | null)[]): tf.Tensor4D {
  if (sigmas.every((s) => s === null)) return x;
  const [n, h, w, c] = x.shape;
  if (h !== w) throw new Error(`gaussianBlur: needs square images, got ${h}x${w}`);
  if (sigmas.length !== n) throw new Error(`gaussianBlur: ${sigmas.length} sigmas for ${n} images`);
  const kernelSize = blurKernelSize(h);
  if (h <= (kernelSize - 1) / 2) throw new Error(`gaussianBlur: ${h} px is too small to reflect-pad`);
  const matrices = new Float32Array(n * h * h);
  sigmas.forEach((sigma, i) =>
    writeBlurMatrix(matrices, i * h * h, h, sigma === null ? null : gaussianKernel1d(kernelSize, sigma)),
  );
  return tf.tidy(() => {
    const blur = tf.tensor3d(matrices, [n, h, h]);
    const rows = tf.matMul(blur, tf.reshape(x, [n, h, w * c]));
    const swapped = tf.transpose(tf.reshape(rows, [n, h, w, c]), [0, 2, 1, 3]);
    const cols = tf.matMul(blur, tf.reshape(swapped, [n, w, h * c]));
    return tf.transpose(tf.reshape(cols, [n, w, h, c]), [0, 2, 1, 3]);
  });
}
