import sharp from 'sharp';
import type { ImageDataset } from './image-dataset.js';

/** Thumbnails keep their images' size up to this many pixels a side, and are shrunk to it beyond. */
export const THUMBNAIL_MAX_SIDE = 64;

export interface Thumbnail {
  /** Label index of the image, when the dataset has labels. */
  label: number | null;
  png: Buffer;
}

/** Images per label index (length: the highest label + 1, or the class names' count if more). */
export function classCounts(ds: ImageDataset): number[] | null {
  if (!ds.labels) return null;
  const counts: number[] = new Array(ds.classNames?.length ?? 0).fill(0);
  for (const label of ds.labels) {
    while (counts.length <= label) counts.push(0);
    counts[label]! += 1;
  }
  return counts;
}

/**
 * Which images to show: classes taken in turn (every class is seen in the first few), each class's
 * images spread evenly over its occurrences; without labels, spread evenly over the dataset. The same
 * dataset always gives the same picks, and any prefix of them is as balanced as it can be.
 */
export function sampleIndices(ds: ImageDataset, n: number): number[] {
  const want = Math.min(n, ds.count);
  if (!ds.labels) return Array.from({ length: want }, (_, i) => Math.floor((i * ds.count) / want));
  const byClass = new Map<number, number[]>();
  for (const [i, label] of ds.labels.entries()) {
    const list = byClass.get(label) ?? byClass.set(label, []).get(label)!;
    list.push(i);
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b).map((c) => byClass.get(c)!);
  // Each class's share: one each in turn, a class that runs out leaving its turn to the others.
  const shares = classes.map(() => 0);
  for (let given = 0; given < want; ) {
    for (const [c, list] of classes.entries()) {
      if (given < want && shares[c]! < list.length) (shares[c]! += 1), given++;
    }
  }
  // Round r takes each class's r-th of its share, evenly spaced over the class.
  const picks: number[] = [];
  for (let round = 0; picks.length < want; round++) {
    for (const [c, list] of classes.entries()) {
      if (round < shares[c]!) picks.push(list[Math.floor((round * list.length) / shares[c]!)]!);
    }
  }
  return picks;
}

/** PNG thumbnails of `n` images picked by sampleIndices, at most THUMBNAIL_MAX_SIDE pixels a side. */
export async function thumbnails(ds: ImageDataset, n: number): Promise<Thumbnail[]> {
  const { height, width, channels } = ds;
  const size = height * width * channels;
  const shrink = Math.max(height, width) > THUMBNAIL_MAX_SIDE;
  return Promise.all(
    sampleIndices(ds, n).map(async (i) => {
      let image = sharp(ds.pixels.subarray(i * size, (i + 1) * size), { raw: { width, height, channels } });
      if (shrink) image = image.resize(THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE, { fit: 'inside' });
      return { label: ds.labels ? ds.labels[i]! : null, png: await image.png().toBuffer() };
    }),
  );
}
