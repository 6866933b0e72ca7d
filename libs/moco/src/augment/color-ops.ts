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
 * instead of torchvision's HSV rotation: a linear map, one 3x3 matrix like the other ops.
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
function affineOf(op: ColorOp, channels: number): Affine | null {
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

/** out = clamp(M pixel + contrast * mean luma, 0, 1) over one image's `pixels` HWC values, in place. */
function applyAffine(x: Float32Array, offset: number, pixels: number, channels: number, map: Affine): void {
  const end = offset + pixels * channels;
  let shift = 0;
  if (map.contrast !== 0) {
    let sum = 0;
    if (channels === 1) for (let i = offset; i < end; i++) sum += x[i]!;
    else for (let i = offset; i < end; i += 3) sum += LUMA[0]! * x[i]! + LUMA[1]! * x[i + 1]! + LUMA[2]! * x[i + 2]!;
    shift = (map.contrast * sum) / pixels;
  }
  const clamp = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
  if (channels === 1) {
    const f = map.matrix[0]![0]!;
    for (let i = offset; i < end; i++) x[i] = clamp(f * x[i]! + shift);
    return;
  }
  const m = map.matrix.flat();
  const [m00, m01, m02, m10, m11, m12, m20, m21, m22] = [m[0]!, m[1]!, m[2]!, m[3]!, m[4]!, m[5]!, m[6]!, m[7]!, m[8]!];
  for (let i = offset; i < end; i += 3) {
    const r = x[i]!;
    const g = x[i + 1]!;
    const b = x[i + 2]!;
    x[i] = clamp(m00 * r + m01 * g + m02 * b + shift);
    x[i + 1] = clamp(m10 * r + m11 * g + m12 * b + shift);
    x[i + 2] = clamp(m20 * r + m21 * g + m22 * b + shift);
  }
}

/**
 * Applies one image's colour ops in order, in place, on its `pixels` HWC values from `offset` (in
 * [0, 1], 1 or 3 channels), clamping after each op as torchvision.
 */
export function applyColorOps(x: Float32Array, offset: number, pixels: number, channels: number, ops: readonly ColorOp[]): void {
  for (const op of ops) {
    const map = affineOf(op, channels);
    if (map !== null) applyAffine(x, offset, pixels, channels, map);
  }
}
