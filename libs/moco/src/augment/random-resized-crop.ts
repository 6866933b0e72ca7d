import * as tf from '../tf.js';
import type { Rng } from '../rng.js';

/** A crop in integer pixels, as torchvision's `RandomResizedCrop.get_params` returns it. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** Python's round() (halves to even), so crop sizes come out as torchvision's. */
function roundHalfEven(v: number): number {
  const floor = Math.floor(v);
  if (v - floor !== 0.5) return Math.round(v);
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * torchvision's RandomResizedCrop.get_params. Up to 10 attempts, each drawing the area fraction
 * (uniform in `scale`) then the log aspect ratio (uniform in log `ratio`); the first crop that fits
 * draws its top then its left offset. If none fits: the centre crop, clamped to the ratio range.
 */
export function sampleCrop(
  rng: Rng,
  height: number,
  width: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
): CropBox {
  const area = height * width;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])] as const;
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logRatio[0], logRatio[1]));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(height - h + 1);
      const left = rng.int(width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < ratio[0]) h = roundHalfEven(w / ratio[0]);
  else if (inRatio > ratio[1]) w = roundHalfEven(h * ratio[1]);
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/**
 * First and last sample position (in pixel centres) along one axis when `length` pixels from
 * `start` are resized to `size` samples. Downscaling uses torch's half-pixel mapping (sample r at
 * start + (r + 0.5) * length / size - 0.5), which is linear, so a crop box reproduces it exactly.
 * Upscaling: torch clamps the outermost samples to the crop's edge pixels, which a linear box cannot;
 * the box then spans exactly the edge pixel centres (align-corners), which moves each sample by less
 * than half a pixel and never reads outside the crop.
 */
function sampleSpan(start: number, length: number, size: number): [number, number] {
  const inset = Math.max(0, (length / size - 1) / 2);
  return [start + inset, start + length - 1 - inset];
}

/**
 * Crops box b of image b, mirrored left-right where flips[b], and resizes it bilinearly to
 * size x size (no antialiasing, unlike torchvision's default `antialias=True`; that only matters when a
 * crop is shrunk). Box corners are float32 fractions, so sample positions are off by ~1e-6 px.
 */
export function resizedCrop(
  images: tf.Tensor4D,
  crops: readonly CropBox[],
  flips: readonly boolean[],
  size: number,
): tf.Tensor4D {
  const [n, height, width] = images.shape;
  if (crops.length !== n || flips.length !== n) {
    throw new Error(`resizedCrop: ${crops.length} crops and ${flips.length} flips for ${n} images`);
  }
  return tf.tidy(() => {
    // cropAndResize writes its extrapolation value, not the edge, for a sample that rounding puts a
    // hair past the last pixel; a 1-pixel edge copy around the image makes such samples read the edge.
    const padded = tf.mirrorPad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], 'symmetric');
    const boxes = new Float32Array(n * 4);
    crops.forEach((crop, b) => {
      const [y1, y2] = sampleSpan(crop.top, crop.height, size);
      const [x1, x2] = sampleSpan(crop.left, crop.width, size);
      // cropAndResize samples from x1 to x2, so swapping them mirrors the crop for free.
      const [from, to] = flips[b] ? [x2, x1] : [x1, x2];
      // Normalised so that 1 is the padded image's last pixel centre; +1 skips the pad.
      boxes.set([(y1 + 1) / (height + 1), (from + 1) / (width + 1), (y2 + 1) / (height + 1), (to + 1) / (width + 1)], b * 4);
    });
    return tf.image.cropAndResize(
      padded,
      tf.tensor2d(boxes, [n, 4]),
      tf.range(0, n, 1, 'int32') as tf.Tensor1D,
      [size, size],
      'bilinear',
    );
  });
}
