import type { ImageDataset } from './image-dataset.js';

export interface Batch {
  /** Batch number within the epoch. */
  index: number;
  /** Dataset indices of the images in this batch. */
  indices: Int32Array;
  /** The batch's images, HWC, back to back: a fresh buffer, free to augment in place. */
  pixels: Uint8Array;
  labels?: Int32Array;
}

export interface BatchOptions {
  batchSize: number;
  /** The order to visit images in (a permutation chosen by the caller); default 0..count-1. */
  order?: Int32Array;
  /** Drop a last batch smaller than batchSize. */
  dropLast?: boolean;
  /** Batch index to start from, to resume an epoch. */
  start?: number;
}

export function batchCount(count: number, batchSize: number, dropLast = false): number {
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  return dropLast ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

/** Yields batches by copying only the chosen images out of the dataset, never the dataset itself. */
export function* batches(ds: ImageDataset, options: BatchOptions): Generator<Batch> {
  const { batchSize, dropLast = false, start = 0 } = options;
  const order = options.order ?? Int32Array.from({ length: ds.count }, (_, i) => i);
  if (!Number.isSafeInteger(start) || start < 0) throw new RangeError(`start must be a non-negative integer, got ${start}`);
  const imageBytes = ds.height * ds.width * ds.channels;
  const total = batchCount(order.length, batchSize, dropLast);
  for (let index = start; index < total; index++) {
    const indices = order.slice(index * batchSize, (index + 1) * batchSize);
    const pixels = new Uint8Array(indices.length * imageBytes);
    const labels = ds.labels && new Int32Array(indices.length);
    indices.forEach((image, j) => {
      // subarray would silently clamp a bad index into a wrong image.
      if (image < 0 || image >= ds.count) throw new RangeError(`order holds ${image}, outside 0..${ds.count - 1}`);
      pixels.set(ds.pixels.subarray(image * imageBytes, (image + 1) * imageBytes), j * imageBytes);
      if (labels) labels[j] = ds.labels![image]!;
    });
    yield { index, indices, pixels, ...(labels && { labels }) };
  }
}
