export {
  type AugmentationName,
  type AugmentConfig,
  type ImagesShape,
  type ViewParams,
  augment,
  augmentPixels,
  applyViews,
  applyViewsToPixels,
  sampleViews,
} from './pipelines.js';
export type { ColorOp } from './color-jitter.js';
export type { CropBox } from './random-resized-crop.js';
export { evalTransform } from './eval-transform.js';
