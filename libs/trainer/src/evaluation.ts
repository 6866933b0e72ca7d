import type { ImageDataset } from '@moco/data';
import { Encoder, EVALUATION_PROTOCOL, linearProbe, Rng, type EncoderConfig } from '@moco/moco';
import { extractFeatures, type EvalTransform } from './features.js';
import { classCount, knnTop1, labelsOf, rawPixelFeatures, type KnnMonitorOptions } from './knn-monitor.js';

// The evaluation of an encoder at an epoch's end (kNN and a linear probe, see EVALUATION_PROTOCOL),
// and the same two on raw pixels and on a randomly initialised encoder: the bar a job has to clear.

/** `bank` (un-augmented training images) votes for `test` in the kNN; the probe learns and is scored on `test` alone. */
export interface EvaluationSets {
  bank: ImageDataset;
  test: ImageDataset;
}

export interface Evaluated {
  knnAccuracy: number;
  probeAccuracy: number;
}

export interface Baselines {
  rawKnnAccuracy: number;
  rawProbeAccuracy: number;
  randomKnnAccuracy: number;
  randomProbeAccuracy: number;
}

type Features = (ds: ImageDataset) => Promise<Float32Array>;

/** The probe's split of the eval set: a seeded subset of at most maxImages, its last `heldOut` share scored. */
export function probeSplit(count: number): { train: Int32Array; heldOut: Int32Array } {
  const { maxImages, heldOut, seed } = EVALUATION_PROTOCOL.probe;
  const chosen = new Rng(`${seed}:probe-split`).permutation(count).subarray(0, Math.min(count, maxImages));
  const scored = Math.max(1, Math.round(chosen.length * heldOut));
  return { train: chosen.subarray(0, chosen.length - scored), heldOut: chosen.subarray(chosen.length - scored) };
}

function rows(data: Float32Array, dim: number, indices: Int32Array): Float32Array {
  const out = new Float32Array(indices.length * dim);
  indices.forEach((row, i) => out.set(data.subarray(row * dim, (row + 1) * dim), i * dim));
  return out;
}

/** Held-out top-1 of a seeded softmax regression on the test set's features (rows of `dim`). */
export async function probeAccuracy(test: ImageDataset, features: Float32Array, dim: number): Promise<number> {
  const labels = labelsOf(test, 'test');
  const split = probeSplit(test.count);
  const pick = (indices: Int32Array) => ({ data: rows(features, dim, indices), dim, labels: Int32Array.from(indices, (i) => labels[i]!) });
  const { epochs, lr, batchSize, seed } = EVALUATION_PROTOCOL.probe;
  const result = await linearProbe(pick(split.train), pick(split.heldOut), { numClasses: classCount(labels), epochs, lr, batchSize, seed });
  return result.accuracy;
}

async function evaluateFeatures(sets: EvaluationSets, features: Features, dim: number, knn: KnnMonitorOptions): Promise<Evaluated> {
  const test = await features(sets.test);
  const knnAccuracy = await knnTop1(sets.bank, sets.test, { bank: await features(sets.bank), test, dim }, knn);
  return { knnAccuracy, probeAccuracy: await probeAccuracy(sets.test, test, dim) };
}

/** kNN and probe accuracy of the encoder's backbone features (evaluation transform, BN in inference mode). */
export function evaluateEncoder(encoder: Encoder, sets: EvaluationSets, transform: EvalTransform, knn: KnnMonitorOptions = {}): Promise<Evaluated> {
  const features: Features = async (ds) => (await extractFeatures(encoder, ds, transform)).data;
  return evaluateFeatures(sets, features, encoder.featureDim, knn);
}

/** The same evaluation on raw normalised pixels, and on an encoder of this shape with freshly drawn weights. */
export async function measureBaselines(config: EncoderConfig, sets: EvaluationSets, transform: EvalTransform, knn: KnnMonitorOptions = {}): Promise<Baselines> {
  const { height, width, channels } = sets.test;
  const raw = await evaluateFeatures(sets, async (ds) => rawPixelFeatures(ds, transform), height * width * channels, knn);
  const encoder = new Encoder(config, new Rng(EVALUATION_PROTOCOL.randomEncoderSeed), false);
  try {
    const random = await evaluateEncoder(encoder, sets, transform, knn);
    return { rawKnnAccuracy: raw.knnAccuracy, rawProbeAccuracy: raw.probeAccuracy, randomKnnAccuracy: random.knnAccuracy, randomProbeAccuracy: random.probeAccuracy };
  } finally {
    encoder.dispose();
  }
}
