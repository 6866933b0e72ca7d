import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readArchive } from './archive-reader.js';
import { readCifar10 } from './cifar-reader.js';
import { DatasetError, errorMessage } from './dataset-errors.js';
import { convertDataset } from './decode-image.js';
import { baseName, compareNames, diskFile, type TreeFile } from './file-tree.js';
import { listFolder } from './folder-reader.js';
import { readIdx } from './idx-reader.js';
import type { ImageDataset } from './image-dataset.js';
import { readImageFolder } from './image-folder.js';
import { resolveOptions, type ReadOptions, type ResolvedOptions } from './read-options.js';
import { sniffFile } from './sniff-file.js';

/**
 * A path to auto-detect (a folder of images, idx files or CIFAR-10 batches; a tar, tar.gz or zip archive of any of
 * these; an idx image file), or an explicit format.
 */
export type DatasetSource =
  | string
  | { format: 'imagefolder'; path: string }
  | { format: 'archive'; path: string }
  | { format: 'idx'; images: string; labels?: string }
  | { format: 'cifar10'; files: string[] };

const CIFAR_TRAIN = /^data_batch_(\d+)\.bin$/;
const CIFAR_TEST = /^test_batch\.bin$/;
const IDX_IMAGES = /idx3-ubyte(\.gz)?$/;

function withoutGz(path: string): string {
  return path.replace(/\.gz$/, '');
}

/** The label file that goes with an idx image file: `train-images-idx3-ubyte` -> `train-labels-idx1-ubyte`, gzip or not. */
function idxLabelsAmong<T>(images: string, candidates: T[], pathOf: (c: T) => string): T | undefined {
  const dir = images.slice(0, images.lastIndexOf('/') + 1);
  const wanted = dir + withoutGz(baseName(images)).replace('images', 'labels').replace('idx3', 'idx1');
  return candidates.find((c) => withoutGz(pathOf(c)) === wanted);
}

/** Where a tree holds both splits, the one asked for; otherwise whichever it holds. */
function chooseSplit<T>(train: T[], test: T[], split: 'train' | 'test'): T[] {
  if (train.length === 0) return test;
  if (test.length === 0) return train;
  return split === 'train' ? train : test;
}

/** Reads a folder or archive tree: CIFAR-10 batches, else idx files, else an ImageFolder of images. */
async function readTree(files: TreeFile[], root: string, options: ResolvedOptions): Promise<ImageDataset> {
  const cifar = files.filter((f) => CIFAR_TRAIN.test(baseName(f.path)) || CIFAR_TEST.test(baseName(f.path)));
  if (cifar.length > 0) {
    const batchNumber = (f: TreeFile) => Number(CIFAR_TRAIN.exec(baseName(f.path))?.[1]);
    const train = cifar.filter((f) => CIFAR_TRAIN.test(baseName(f.path))).sort((a, b) => batchNumber(a) - batchNumber(b));
    const test = cifar.filter((f) => CIFAR_TEST.test(baseName(f.path)));
    return readCifar10(chooseSplit(train, test, options.split), options);
  }
  const idx = files.filter((f) => IDX_IMAGES.test(f.path)).sort((a, b) => compareNames(a.path, b.path));
  if (idx.length > 0) {
    const isTrain = (f: TreeFile) => baseName(f.path).startsWith('train');
    const isTest = (f: TreeFile) => /^(t10k|test)/.test(baseName(f.path));
    const chosen = idx.length === 1 ? idx : chooseSplit(idx.filter(isTrain), idx.filter(isTest), options.split);
    const images = chosen[0];
    if (chosen.length !== 1 || !images) {
      throw new DatasetError(
        'unsupported_format',
        root,
        `cannot tell which idx image file to read among ${idx.map((f) => f.path).join(', ')}; use {format: 'idx', images, labels}`,
      );
    }
    return readIdx(images, idxLabelsAmong(images.path, files, (f) => f.path), options);
  }
  return readImageFolder(files, root, options);
}

/** Reads a single file, judged by its content: an archive, or an idx image file with its label file beside it. */
async function readFile(file: string, options: ResolvedOptions): Promise<ImageDataset> {
  const { kind, gzip } = await sniffFile(file);
  if (kind === 'tar' || (kind === 'zip' && !gzip)) {
    return readTree(await readArchive(file, kind, gzip, options), file, options);
  }
  if (kind === 'idx') {
    const labels = idxLabelsAmong(basename(file), await readdir(dirname(file)), (name) => name);
    return readIdx(
      diskFile(file, basename(file), options.maxBytes),
      labels === undefined ? undefined : diskFile(join(dirname(file), labels), labels, options.maxBytes),
      options,
    );
  }
  throw new DatasetError('unsupported_format', file, 'not a tar, tar.gz or zip archive, nor an idx image file (judged by its content, not its name)');
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new DatasetError(missing ? 'not_found' : 'unreadable_file', path, errorMessage(err), { cause: err });
  }
}

async function readSource(source: DatasetSource, options: ResolvedOptions): Promise<ImageDataset> {
  if (typeof source === 'string') {
    return (await isDirectory(source)) ? readTree(await listFolder(source, options), source, options) : readFile(source, options);
  }
  switch (source.format) {
    case 'imagefolder':
      if (!(await isDirectory(source.path))) throw new DatasetError('unsupported_format', source.path, 'is a file, not a folder');
      return readImageFolder(await listFolder(source.path, options), source.path, options);
    case 'archive':
      if (await isDirectory(source.path)) throw new DatasetError('unsupported_format', source.path, 'is a folder, not an archive');
      return readFile(source.path, options);
    case 'idx':
      return readIdx(
        diskFile(source.images, basename(source.images), options.maxBytes),
        source.labels === undefined ? undefined : diskFile(source.labels, basename(source.labels), options.maxBytes),
        options,
      );
    case 'cifar10':
      return readCifar10(source.files.map((file) => diskFile(file, basename(file), options.maxBytes)), options);
  }
}

function sourceName(source: DatasetSource): string {
  if (typeof source === 'string') return source;
  switch (source.format) {
    case 'idx':
      return source.images;
    case 'cifar10':
      return source.files.join(', ');
    default:
      return source.path;
  }
}

/** Reads a dataset into one compact uint8 buffer, resized and converted as asked. Any problem with the data is a DatasetError. */
export async function readDataset(source: DatasetSource, options: ReadOptions = {}): Promise<ImageDataset> {
  const resolved = resolveOptions(options);
  const ds = await readSource(source, resolved);
  const name = sourceName(source);
  if (ds.count === 0) throw new DatasetError('empty_dataset', name, 'holds no images');
  const { size } = resolved;
  const channels = resolved.channels ?? ds.channels;
  // Decoded photos already have the asked size and channels; raw idx and CIFAR-10 pixels may still need converting.
  const ready = channels === ds.channels && (!size || (size.height === ds.height && size.width === ds.width));
  return ready ? ds : convertDataset(ds, { size, channels, maxPixels: resolved.maxPixelsPerImage }, resolved.maxBytes, name);
}
