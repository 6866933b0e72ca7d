import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ImageDataset } from './image-dataset.js';
import { readDataset } from './read-dataset.js';
import type { ReadOptions } from './read-options.js';

/** Where Debian's dataset-fashion-mnist package installs the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/**
 * The subset shipped with the repository (libs/data/fashion-mnist-subset: MIT, Zalando SE; see its
 * NOTICE), for machines without the full set: the first images of each class of each split, as
 * libs/data/scripts/make-fashion-mnist-subset.ts builds it.
 */
export const FASHION_MNIST_SUBSET = {
  dir: fileURLToPath(new URL('../fashion-mnist-subset/', import.meta.url)),
  perClass: { train: 500, test: 200 },
} as const;

const FILES = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'];

export interface FashionMnistSource {
  /** Where to load from (loadFashionMnist's `dir`). */
  dir: string;
  /** True when the full set was not found and this is the shipped subset. */
  subset: boolean;
  /** One line for the user: which set is used, and from where. */
  description: string;
}

/** The full set in `dir` where its four files are, else the subset shipped with the repository. */
export async function findFashionMnist(dir: string = FASHION_MNIST_DIR): Promise<FashionMnistSource> {
  const found = await Promise.all(FILES.map((f) => access(join(dir, f)).then(() => true, () => false)));
  if (found.every(Boolean)) return { dir, subset: false, description: `Fashion-MNIST: the full set in ${dir}` };
  const { train, test } = FASHION_MNIST_SUBSET.perClass;
  const classes = FASHION_MNIST_CLASSES.length;
  return {
    dir: FASHION_MNIST_SUBSET.dir,
    subset: true,
    description:
      `Fashion-MNIST: the full set is not in ${dir}; using the subset shipped with the repository ` +
      `(${train * classes} training and ${test * classes} test images, ${FASHION_MNIST_SUBSET.dir})`,
  };
}

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** Fashion-MNIST's 60000 training or 10000 test images (28x28, grey), with labels and class names. */
export async function loadFashionMnist(
  split: 'train' | 'test',
  options: Omit<ReadOptions, 'split'> & { dir?: string } = {},
): Promise<ImageDataset> {
  const { dir = FASHION_MNIST_DIR, ...readOptions } = options;
  const prefix = split === 'train' ? 'train' : 't10k';
  const ds = await readDataset(
    {
      format: 'idx',
      images: join(dir, `${prefix}-images-idx3-ubyte.gz`),
      labels: join(dir, `${prefix}-labels-idx1-ubyte.gz`),
    },
    readOptions,
  );
  return { ...ds, classNames: [...FASHION_MNIST_CLASSES] };
}
