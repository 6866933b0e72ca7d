import { join } from 'node:path';
import type { ImageDataset } from './image-dataset.js';
import { readDataset } from './read-dataset.js';
import type { ReadOptions } from './read-options.js';

/** Where Debian's dataset-fashion-mnist package installs the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

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
