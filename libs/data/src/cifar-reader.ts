import { constants } from 'node:buffer';
import { DatasetError } from './dataset-errors.js';
import type { TreeFile } from './file-tree.js';
import type { ImageDataset } from './image-dataset.js';

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

// A CIFAR-10 binary batch is bare records (1 label byte, then 32x32 pixels as R, G, B planes): no header to parse,
// nothing a package would add.
const SIDE = 32;
const PLANE = SIDE * SIDE;
const IMAGE_BYTES = 3 * PLANE;
const RECORD_BYTES = 1 + IMAGE_BYTES;

/** Reads CIFAR-10 binary batches in the given order, converting each image from CHW planes to HWC. */
export async function readCifar10(files: TreeFile[], options: { limit: number; maxBytes: number }): Promise<ImageDataset> {
  const counts: number[] = [];
  for (const file of files) {
    const size = await file.size();
    if (size % RECORD_BYTES !== 0) {
      throw new DatasetError('bad_cifar', file.name, `${size} bytes is not a whole number of ${RECORD_BYTES}-byte CIFAR-10 records`);
    }
    counts.push(size / RECORD_BYTES);
  }
  const count = Math.min(options.limit, counts.reduce((a, b) => a + b, 0));
  if (count * IMAGE_BYTES > Math.min(options.maxBytes, constants.MAX_LENGTH)) {
    throw new DatasetError('too_large', files[0]?.name ?? '', `${count} CIFAR-10 images need more than the limit of ${options.maxBytes} bytes`);
  }
  const pixels = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Int32Array(count);
  let n = 0;
  for (const file of files) {
    if (n === count) break;
    const bytes = await file.read();
    for (let record = 0; record * RECORD_BYTES < bytes.length && n < count; record++, n++) {
      const offset = record * RECORD_BYTES;
      const label = bytes[offset]!;
      if (label >= CIFAR10_CLASSES.length) throw new DatasetError('bad_cifar', file.name, `record ${record} has label ${label}, not 0..9`);
      labels[n] = label;
      const out = n * IMAGE_BYTES;
      for (let p = 0; p < PLANE; p++) {
        for (let c = 0; c < 3; c++) pixels[out + 3 * p + c] = bytes[offset + 1 + c * PLANE + p]!;
      }
    }
  }
  return { count, height: SIDE, width: SIDE, channels: 3, pixels, labels, classNames: [...CIFAR10_CLASSES] };
}
