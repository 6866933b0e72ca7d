import type { Rng } from '../rng.js';

/** One colour transform of one image, with its drawn parameter. */
export type ColorOp =
  | { kind: 'brightness' | 'contrast' | 'saturation'; factor: number }
  /** Hue shift in turns, in [-0.5, 0.5]. */
  | { kind: 'hue'; shift: number }
  | { kind: 'grayscale' };

export interface JitterStrength {
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
}

/** A brightness/contrast/saturation factor, uniform in [max(0, 1 - s), 1 + s] as torchvision. */
export function sampleFactor(rng: Rng, strength: number): number {
  return rng.uniform(Math.max(0, 1 - strength), 1 + strength);
}

/**
 * torchvision's ColorJitter: draws the order of the four ops (a permutation), then the brightness,
 * contrast, saturation and hue parameters in that fixed order, and returns the ops in the drawn order.
 */
export function sampleColorJitter(rng: Rng, strength: JitterStrength): ColorOp[] {
  const order = rng.permutation(4);
  // Array literal elements are evaluated left to right, which fixes the draw order.
  const ops: ColorOp[] = [
    { kind: 'brightness', factor: sampleFactor(rng, strength.brightness) },
    { kind: 'contrast', factor: sampleFactor(rng, strength.contrast) },
    { kind: 'saturation', factor: sampleFactor(rng, strength.saturation) },
    { kind: 'hue', shift: rng.uniform(-strength.hue, strength.hue) },
  ];
  return Array.from(order, (i) => ops[i]!);
}
