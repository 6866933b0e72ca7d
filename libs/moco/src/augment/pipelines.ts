import * as tf from '../tf.js';
import type { Rng } from '../rng.js';
import { type ColorOp, type JitterStrength, sampleColorJitter, sampleFactor } from './color-jitter.js';
import { applyColorOps } from './color-ops.js';
import { gaussianBlur } from './gaussian-blur.js';
import { checkNormalization } from './normalize.js';
import { type CropBox, cropSamples, resizedCrop, sampleCrop } from './random-resized-crop.js';

export type AugmentationName = 'v1' | 'v2' | 'gray';

export interface AugmentConfig {
  pipeline: AugmentationName;
  /** Output height = width. */
  size: number;
  /** Per channel, on the 0..1 scale. */
  mean: number[];
  std: number[];
}

/** Everything drawn for one view of one image. */
export interface ViewParams {
  crop: CropBox;
  /** Colour ops in the order they are applied. */
  color: ColorOp[];
  /** Gaussian blur sigma, or null for no blur. */
  blurSigma: number | null;
  flip: boolean;
}

interface PipelineSpec {
  /** Draws the colour ops of one image, in pipeline order. */
  color(rng: Rng): ColorOp[];
  /** Probability of a Gaussian blur (sigma uniform in [0.1, 2]); absent: never, and nothing is drawn. */
  blur?: number;
}

const CROP_SCALE = [0.2, 1] as const;
const CROP_RATIO = [3 / 4, 4 / 3] as const;
const FLIP_P = 0.5;
const GRAYSCALE_P = 0.2;
const BLUR_SIGMA = [0.1, 2] as const;
const V1_JITTER: JitterStrength = { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.4 };
const V2_JITTER: JitterStrength = { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 };

/** torchvision's RandomApply: one draw, then the transform's own draws only if it applies. */
function randomApply(rng: Rng, p: number, draw: () => ColorOp[]): ColorOp[] {
  return rng.bernoulli(p) ? draw() : [];
}

const randomGrayscale = (rng: Rng): ColorOp[] => randomApply(rng, GRAYSCALE_P, () => [{ kind: 'grayscale' }]);

const PIPELINES: Record<AugmentationName, PipelineSpec> = {
  // MoCo v1: RandomGrayscale(0.2), then ColorJitter(0.4, 0.4, 0.4, 0.4) always.
  v1: { color: (rng) => [...randomGrayscale(rng), ...sampleColorJitter(rng, V1_JITTER)] },
  // MoCo v2: RandomApply(ColorJitter(0.4, 0.4, 0.4, 0.1), 0.8), RandomGrayscale(0.2), blur with p 0.5.
  v2: {
    color: (rng) => [...randomApply(rng, 0.8, () => sampleColorJitter(rng, V2_JITTER)), ...randomGrayscale(rng)],
    blur: 0.5,
  },
  // Grayscale data: with p 0.8, brightness 0.4 then contrast 0.4 (fixed order).
  gray: {
    color: (rng) =>
      randomApply(rng, 0.8, () => [
        { kind: 'brightness', factor: sampleFactor(rng, 0.4) },
        { kind: 'contrast', factor: sampleFactor(rng, 0.4) },
      ]),
  },
};

/**
 * Draws the views of `count` images of height x width, image by image; per image, in this order:
 * the crop (see sampleCrop), the colour ops (see PIPELINES), the blur (v2: apply?, then sigma if so),
 * the flip. The number of draws does not depend on the channel count.
 */
export function sampleViews(pipeline: AugmentationName, count: number, height: number, width: number, rng: Rng): ViewParams[] {
  const spec = PIPELINES[pipeline];
  return Array.from({ length: count }, () => ({
    crop: sampleCrop(rng, height, width, CROP_SCALE, CROP_RATIO),
    color: spec.color(rng),
    blurSigma: spec.blur !== undefined && rng.bernoulli(spec.blur) ? rng.uniform(BLUR_SIGMA[0], BLUR_SIGMA[1]) : null,
    flip: rng.bernoulli(FLIP_P),
  }));
}

/** The layout of a batch of images, HWC each, back to back. */
export interface ImagesShape {
  count: number;
  height: number;
  width: number;
  channels: number;
}

/**
 * Applies drawn views to uint8-valued images (`pixels`, laid out as `shape`), one image at a time in
 * plain JavaScript: crop + resize + flip, scale to [0, 1], colour ops, blur, normalise; returns
 * [N, size, size, C] float32 values. The flip is done by the crop, ahead of its place in torchvision's
 * order: every later op commutes with it (pixelwise or whole-image colour ops, a symmetric blur
 * kernel with symmetric padding, per-channel normalisation). Works in float throughout (torchvision's
 * tensor path), so unlike a PIL pipeline nothing is rounded to uint8 between ops.
 */
export function applyViewsToPixels(
  pixels: ArrayLike<number>,
  shape: ImagesShape,
  views: readonly ViewParams[],
  cfg: Omit<AugmentConfig, 'pipeline'>,
): Float32Array {
  const { count, height, width, channels } = shape;
  if (views.length !== count) throw new Error(`applyViews: ${views.length} views for ${count} images`);
  if (pixels.length !== count * height * width * channels) {
    throw new Error(`applyViews: ${pixels.length} values for ${count} images of ${height}x${width}x${channels}`);
  }
  const { size, mean, std } = cfg;
  const viewValues = size * size * channels;
  const out = new Float32Array(count * viewValues);
  const scratch = new Float32Array(viewValues);
  views.forEach((view, b) => {
    const at = b * viewValues;
    const samples = cropSamples(view.crop, view.flip, size, height, width);
    resizedCrop(pixels, b * height * width * channels, shape, samples, out, at, 1 / 255);
    applyColorOps(out, at, size * size, channels, view.color);
    if (view.blurSigma !== null) gaussianBlur(out, at, size, channels, view.blurSigma, scratch);
    for (let c = 0; c < channels; c++) {
      const [m, s] = [mean[c]!, std[c]!];
      for (let i = at + c; i < at + viewValues; i += channels) out[i] = (out[i]! - m) / s;
    }
  });
  return out;
}

/** applyViewsToPixels on a uint8-valued tensor [N,H,W,C] (int32 or float32, 0..255); float32 [N,size,size,C]. */
export function applyViews(images: tf.Tensor4D, views: readonly ViewParams[], cfg: Omit<AugmentConfig, 'pipeline'>): tf.Tensor4D {
  const [count, height, width, channels] = images.shape;
  const values = applyViewsToPixels(images.dataSync(), { count, height, width, channels }, views, cfg);
  return tf.tensor4d(values, [count, cfg.size, cfg.size, channels], 'float32');
}

/** Checks a config against images of `channels`; throws before anything is drawn. */
function checkAugment(channels: number, cfg: AugmentConfig): void {
  if (channels !== 1 && channels !== 3) throw new Error(`augment: images need 1 or 3 channels, got ${channels}`);
  if (!Number.isInteger(cfg.size) || cfg.size < 2) throw new Error(`augment: size must be an integer >= 2, got ${cfg.size}`);
  checkNormalization(channels, cfg.mean, cfg.std);
}

/**
 * One independent view of each of the uint8 images in `pixels` (laid out as `shape`), drawn from
 * `rng`: float32 [N, size, size, C] values, normalised. What the training loop feeds the step.
 */
export function augmentPixels(pixels: Uint8Array, shape: ImagesShape, cfg: AugmentConfig, rng: Rng): Float32Array {
  // Checked before drawing, so a rejected call leaves the RNG where it was.
  checkAugment(shape.channels, cfg);
  return applyViewsToPixels(pixels, shape, sampleViews(cfg.pipeline, shape.count, shape.height, shape.width, rng), cfg);
}

/**
 * augmentPixels on a tensor. images: uint8-valued [N,H,W,C] (int32 or float32, 0..255), C = 1 or 3;
 * returns float32 [N,size,size,C] normalised. One call = one independent draw per image, all from `rng`.
 */
export function augment(images: tf.Tensor4D, cfg: AugmentConfig, rng: Rng): tf.Tensor4D {
  const [n, height, width, channels] = images.shape;
  checkAugment(channels, cfg);
  return applyViews(images, sampleViews(cfg.pipeline, n, height, width, rng), cfg);
}
