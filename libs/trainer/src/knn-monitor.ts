import type { ImageDataset } from '@moco/data';
import { accuracy, knnPredict, normalizeRows, type Encoder } from '@moco/moco';
import { extractFeatures, type EvalTransform } from './features.js';

export interface KnnMonitorOptions {
  k?: number;
  t?: number;
}

export function labelsOf(ds: ImageDataset, role: string): Int32Array {
  if (!ds.labels) throw new Error(`the kNN monitor needs a labelled ${role} dataset`);
  return ds.labels;
}

export function classCount(...sets: Int32Array[]): number {
  let max = 0;
  for (const labels of sets) for (const l of labels) max = Math.max(max, l);
  return max + 1;
}

/** kNN top-1 of `test` given features of both sets as flat L2-normalised [n, dim] arrays. */
export async function knnTop1(
  bank: ImageDataset,
  test: ImageDataset,
  features: { bank: Float32Array; test: Float32Array; dim: number },
  opts: KnnMonitorOptions,
): Promise<number> {
  const bankLabels = labelsOf(bank, 'bank');
  const testLabels = labelsOf(test, 'test');
  const predictions = await knnPredict({ data: features.bank, dim: features.dim, labels: bankLabels }, features.test, {
    ...opts,
    numClasses: classCount(bankLabels, testLabels),
  });
  return accuracy(predictions, testLabels);
}

/** kNN top-1 of the encoder's backbone features: `bank` (un-augmented train images) votes for `test`. */
export async function knnAccuracy(
  encoder: Encoder,
  bank: ImageDataset,
  test: ImageDataset,
  transform: EvalTransform,
  opts: KnnMonitorOptions = {},
): Promise<number> {
  const b = await extractFeatures(encoder, bank, transform);
  const q = await extractFeatures(encoder, test, transform);
  return knnTop1(bank, test, { bank: b.data, test: q.data, dim: b.dim }, opts);
}

/** The same vote on raw normalised pixels: the bar a learned encoder has to clear. */
export async function rawPixelKnnAccuracy(
  bank: ImageDataset,
  test: ImageDataset,
  transform: EvalTransform,
  opts: KnnMonitorOptions = {},
): Promise<number> {
  const dim = bank.height * bank.width * bank.channels;
  return knnTop1(bank, test, { bank: rawPixelFeatures(bank, transform), test: rawPixelFeatures(test, transform), dim }, opts);
}

/** Each image's pixels, normalised as the evaluation transform does, as an L2-normalised row. */
export function rawPixelFeatures(ds: ImageDataset, transform: EvalTransform): Float32Array {
  const out = new Float32Array(ds.pixels.length);
  const c = ds.channels;
  for (let i = 0; i < out.length; i++) out[i] = (ds.pixels[i]! / 255 - transform.mean[i % c]!) / transform.std[i % c]!;
  return normalizeRows(out, ds.height * ds.width * c);
}
