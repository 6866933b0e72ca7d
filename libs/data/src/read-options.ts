import type { ImageSize } from './image-dataset.js';

export interface ReadOptions {
  /** Resize every image to this (cover, centred). Default: keep the native size, which must then be the same for all images. */
  imageSize?: number | ImageSize;
  /** Convert to this many channels. Default: 3 for photos and CIFAR-10, 1 for idx. */
  channels?: 1 | 3;
  /** Read only the first N images. */
  limit?: number;
  /** Which split to read where a folder or archive holds both (idx, CIFAR-10). Default 'train'. */
  split?: 'train' | 'test';
  /**
   * Most bytes held at once: the unpacked contents of an archive, a decompressed or single file, and the decoded
   * pixels. Counted while streaming, so a zip or gzip bomb is stopped before it fills memory.
   */
  maxBytes?: number;
  /** Most entries in an archive or folder tree. */
  maxFiles?: number;
  /** Most pixels (width*height) of one encoded image, checked before decoding it. */
  maxPixelsPerImage?: number;
}

export interface ResolvedOptions {
  size?: ImageSize;
  channels?: 1 | 3;
  limit: number;
  split: 'train' | 'test';
  maxBytes: number;
  maxFiles: number;
  maxPixelsPerImage: number;
}

export const DEFAULT_MAX_BYTES = 2 * 1024 ** 3;
export const DEFAULT_MAX_FILES = 1_000_000;
export const DEFAULT_MAX_PIXELS_PER_IMAGE = 8192 * 8192;

function positiveInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${what} must be a positive integer, got ${value}`);
  return value;
}

export function resolveOptions(options: ReadOptions): ResolvedOptions {
  const { imageSize, channels } = options;
  if (channels !== undefined && channels !== 1 && channels !== 3) {
    throw new RangeError(`channels must be 1 or 3, got ${String(channels)}`);
  }
  const size =
    imageSize === undefined
      ? undefined
      : typeof imageSize === 'number'
        ? { height: positiveInteger(imageSize, 'imageSize'), width: imageSize }
        : { height: positiveInteger(imageSize.height, 'imageSize.height'), width: positiveInteger(imageSize.width, 'imageSize.width') };
  return {
    size,
    channels,
    limit: options.limit === undefined ? Infinity : positiveInteger(options.limit, 'limit'),
    split: options.split ?? 'train',
    maxBytes: positiveInteger(options.maxBytes ?? DEFAULT_MAX_BYTES, 'maxBytes'),
    maxFiles: positiveInteger(options.maxFiles ?? DEFAULT_MAX_FILES, 'maxFiles'),
    maxPixelsPerImage: positiveInteger(options.maxPixelsPerImage ?? DEFAULT_MAX_PIXELS_PER_IMAGE, 'maxPixelsPerImage'),
  };
}
