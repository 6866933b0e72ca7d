import * as tf from '../tf.js';
import { checkNormalization, normalize } from './normalize.js';
import type { AugmentConfig } from './pipelines.js';

/**
 * The evaluation transform: bilinear resize to size x size if needed (half-pixel centres, as torch's
 * bilinear resize without antialiasing; a non-square image is stretched, not centre-cropped), scale
 * to [0, 1], normalise. No randomness.
 */
export function evalTransform(images: tf.Tensor4D, cfg: Pick<AugmentConfig, 'size' | 'mean' | 'std'>): tf.Tensor4D {
  const [, height, width, channels] = images.shape;
  checkNormalization(channels, cfg.mean, cfg.std);
  return tf.tidy(() => {
    let x = tf.cast(images, 'float32');
    if (height !== cfg.size || width !== cfg.size) x = tf.image.resizeBilinear(x, [cfg.size, cfg.size], false, true);
    return normalize(tf.div(x, 255), cfg.mean, cfg.std);
  });
}
