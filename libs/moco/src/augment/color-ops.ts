import * as tf from '../tf.js';
import type { ColorOp } from './color-jitter.js';

type Matrix = number[][];

/** ITU-R 601 luma weights: PIL's convert('L'), and the Y row of YIQ. */
const LUMA = [0.299, 0.587, 0.114];
/** NTSC RGB -> YIQ, rows Y, I, Q. */
const RGB_TO_YIQ: Matrix = [LUMA, [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]];

function matMul3(a: Matrix, b: Matrix): Matrix {
  return a.map((row) => b[0]!.map((_, j) => row.reduce((s, v, k) => s + v * b[k]![j]!, 0)));
}

/** Inverse by adjugate / determinant (not the rounded textbook YIQ -> RGB), so a zero shift is the identity. */
function inverse3(m: Matrix): Matrix {
  const at = (i: number, j: number) => m[(i + 3) % 3]![(j + 3) % 3]!;
  const cofactor = (i: number, j: number) => at(i + 1, j + 1) * at(i + 2, j + 2) - at(i + 1, j + 2) * at(i + 2, j + 1);
  const det = [0, 1, 2].reduce((s, j) => s + at(0, j) * cofactor(0, j), 0);
  return [0, 1, 2].map((i) => [0, 1, 2].map((j) => cofactor(j, i) / det));
}

const YIQ_TO_RGB = inverse3(RGB_TO_YIQ);

const identity = (n: number): Matrix => Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));

/** f * pixel + (1 - f) * luma(pixel) in every channel; f = 0 is grayscale. */
const blendWithLuma = (f: number): Matrix => [0, 1, 2].map((i) => LUMA.map((w, j) => (i === j ? f : 0) + (1 - f) * w));

/**
 * Hue shift by `shift` turns as a rotation of the chroma (I, Q) plane of YIQ about the luma axis,
 * instead of torchvision's HSV rotation: a linear map, so it batches as one matmul like the other ops.
 * Luma is kept (HSV keeps max and min instead) and strong shifts of saturated colours leave the RGB
 * cube and are clamped, where HSV stays inside. Turned clockwise in the (I, Q) plane, so that positive
 * shifts go red -> green -> blue as in HSV.
 */
function hueRotation(shift: number): Matrix {
  const [c, s] = [Math.cos(2 * Math.PI * shift), Math.sin(2 * Math.PI * shift)];
  return matMul3(YIQ_TO_RGB, matMul3([[1, 0, 0], [0, c, s], [0, -s, c]], RGB_TO_YIQ));
}

/** A colour op as out = clamp(M pixel + contrast * mean luma of the image, 0, 1); null: no-op. */
interface Affine {
  matrix: Matrix;
  contrast: number;
}

/**
 * torchvision's `_blend(x, other, f) = f*x + (1-f)*other` with other = 0 (brightness), the image's
 * mean gray (contrast) or its gray (saturation); grayscale replaces every channel by luma. Saturation,
 * hue and grayscale leave 1-channel images as they are, as torchvision does.
 */
function affineOf(op: ColorOp | undefined, channels: number): Affine | null {
  if (op === undefined) return null;
  const scaled = (f: number) => identity(channels).map((row) => row.map((v) => v * f));
  switch (op.kind) {
    case 'brightness':
      return { matrix: scaled(op.factor), contrast: 0 };
    case 'contrast':
      return { matrix: scaled(op.factor), contrast: 1 - op.factor };
    case 'saturation':
      return channels === 1 ? null : { matrix: blendWithLuma(op.factor), contrast: 0 };
    case 'grayscale':
      return channels === 1 ? null : { matrix: blendWithLuma(0), contrast: 0 };
    case 'hue':
      return channels === 1 ? null : { matrix: hueRotation(op.shift), contrast: 0 };
  }
}

/** One op per image on pixels [N, P, C]: a batched matmul, the contrast term, the clamp. */
function applyAffine(x: tf.Tensor3D, maps: readonly (Affine | null)[]): tf.Tensor3D {
  const [n, pixels, channels] = x.shape;
  const eye = identity(channels);
  // Row-vector pixels times M transposed, so M[i][j] goes to [j][i].
  const transposed = new Float32Array(n * channels * channels);
  maps.forEach((map, b) => {
    const m = map?.matrix ?? eye;
    for (let i = 0; i < channels; i++) for (let j = 0; j < channels; j++) transposed[(b * channels + j) * channels + i] = m[i]![j]!;
  });
  let out = tf.matMul(x, tf.tensor3d(transposed, [n, channels, channels]));
  if (maps.some((map) => map !== null && map.contrast !== 0)) {
    // Mean luma = luma weights / P summed over all values of the image: one matmul, where a mean over
    // the pixel axis would first transpose on the cpu backend.
    const lumaWeights = channels === 1 ? [1] : LUMA;
    const weights = Float32Array.from({ length: pixels * channels }, (_, i) => lumaWeights[i % channels]! / pixels);
    const meanLuma = tf.matMul(tf.reshape(x, [n, pixels * channels]), tf.tensor2d(weights, [pixels * channels, 1]));
    const contrast = tf.tensor2d(maps.map((map) => map?.contrast ?? 0), [n, 1]);
    out = tf.add(out, tf.reshape(tf.mul(meanLuma, contrast), [n, 1, 1]));
  }
  return tf.clipByValue(out, 0, 1) as tf.Tensor3D;
}

/**
 * Applies each image's own sequence of colour ops (x in [0, 1], NHWC, 1 or 3 channels), clamping
 * after each op as torchvision. Batched by position: step s applies the s-th op of every image (the
 * identity where an image has fewer ops).
 */
export function applyColorOps(x: tf.Tensor4D, ops: readonly (readonly ColorOp[])[]): tf.Tensor4D {
  const [n, height, width, channels] = x.shape;
  const steps = Math.max(0, ...ops.map((o) => o.length));
  return tf.tidy(() => {
    let pixels: tf.Tensor3D = tf.reshape(x, [n, height * width, channels]);
    for (let s = 0; s < steps; s++) {
      const maps = ops.map((o) => affineOf(o[s], channels));
      if (maps.some((map) => map !== null)) pixels = applyAffine(pixels, maps);
    }
    return tf.reshape(pixels, x.shape);
  });
}
