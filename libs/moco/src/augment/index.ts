export { type AugmentationName, type AugmentConfig, type ViewParams, augment, applyViews, sampleViews } from './pipelines.js';
export type { ColorOp } from './color-jitter.js';
export type { CropBox } from './random-resized-crop.js';
export { evalTransform } from './eval-transform.js';
