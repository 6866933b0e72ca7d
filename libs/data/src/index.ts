export { DatasetError, type DatasetErrorCode } from './dataset-errors.js';
export type { ImageDataset, ImageSize } from './image-dataset.js';
export { DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, DEFAULT_MAX_PIXELS_PER_IMAGE, type ReadOptions } from './read-options.js';
export { readDataset, type DatasetSource } from './read-dataset.js';
export { decodeImage, type DecodeTarget, type RawImage } from './decode-image.js';
export { CIFAR10_CLASSES } from './cifar-reader.js';
export { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, loadFashionMnist } from './fashion-mnist.js';
export { meanStd } from './dataset-stats.js';
export { batchCount, batches, type Batch, type BatchOptions } from './batches.js';
