// Rebuilds the Fashion-MNIST subset shipped in libs/data/fashion-mnist-subset/ (what the demo uses
// where the full set is not installed) from the full set:
//   npx tsx libs/data/scripts/make-fashion-mnist-subset.ts [FULL_SET_DIR]   (default: Debian's folder)
// It keeps the first SUBSET_PER_CLASS images of each class of each split, in their original order,
// so any prefix of the subset is about as balanced as the same prefix of the full set. The output
// is byte for byte the same on every run (gzip level 9, no timestamp).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FASHION_MNIST_DIR, FASHION_MNIST_SUBSET, loadFashionMnist } from '../src/fashion-mnist.js';
import { idxFile } from '../src/archive-writer.js';

const source = process.argv[2] ?? FASHION_MNIST_DIR;
for (const split of ['train', 'test'] as const) {
  const full = await loadFashionMnist(split, { dir: source });
  const perClass = FASHION_MNIST_SUBSET.perClass[split];
  const taken = new Array<number>(full.classNames!.length).fill(0);
  const keep: number[] = [];
  for (let i = 0; i < full.count; i++) {
    const label = full.labels![i]!;
    if (taken[label]! < perClass) {
      taken[label]! += 1;
      keep.push(i);
    }
  }
  const size = full.height * full.width;
  const pixels = new Uint8Array(keep.length * size);
  keep.forEach((from, to) => pixels.set(full.pixels.subarray(from * size, (from + 1) * size), to * size));
  const labels = Uint8Array.from(keep, (i) => full.labels![i]!);
  const prefix = split === 'train' ? 'train' : 't10k';
  const gzip = (bytes: Uint8Array) => gzipSync(bytes, { level: 9 });
  await writeFile(join(FASHION_MNIST_SUBSET.dir, `${prefix}-images-idx3-ubyte.gz`), gzip(idxFile([keep.length, full.height, full.width], pixels)));
  await writeFile(join(FASHION_MNIST_SUBSET.dir, `${prefix}-labels-idx1-ubyte.gz`), gzip(idxFile([keep.length], labels)));
  process.stdout.write(`${split}: ${keep.length} images (${perClass} per class) from ${source}\n`);
}
