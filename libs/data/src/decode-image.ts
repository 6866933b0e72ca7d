import { constants } from 'node:buffer';
import pMap from 'p-map';
import sharp, { type OutputInfo } from 'sharp';
import { DatasetError, errorMessage } from './dataset-errors.js';
import type { ImageDataset, ImageSize } from './image-dataset.js';
import { decodePlainPng } from './plain-png.js';

/** Uncompressed HWC pixels, as idx and CIFAR-10 files hold them. */
export interface RawImage {
  data: Uint8Array;
  height: number;
  width: number;
  channels: 1 | 3;
}

export interface DecodeTarget {
  /** Resize to this; keep the native size when absent. */
  size?: ImageSize;
  channels: 1 | 3;
  maxPixels: number;
}

/** Images to decode one by one into a single dataset buffer. */
export interface ImageSource {
  count: number;
  /** What error messages call image i. */
  name(i: number): string;
  load(i: number): Promise<Uint8Array | RawImage>;
}

// sharp decodes on libuv's thread pool, 4 threads by default: more in flight only holds more encoded files in memory.
const DECODE_CONCURRENCY = 4;

/**
 * An encoded image's size from its header alone, without decoding it: what decoding it will cost, to be
 * checked against a budget before any pixel is decoded.
 */
export async function readImageSize(input: Uint8Array, file: string): Promise<ImageSize> {
  try {
    const { width, height } = await sharp(input).metadata();
    if (width && height) return { width, height };
  } catch (err) {
    throw new DatasetError('unreadable_image', file, errorMessage(err), { cause: err });
  }
  throw new DatasetError('unreadable_image', file, 'the image header has no size');
}

/** Decodes (or converts raw pixels), drops alpha, resizes and converts channels; always uint8 HWC. */
export async function decodeImage(input: Uint8Array | RawImage, file: string, target: DecodeTarget): Promise<RawImage> {
  const plain = input instanceof Uint8Array ? decodePlainPng(input, target) : undefined;
  if (plain) return plain;
  let out: { data: Buffer; info: OutputInfo };
  try {
    const options = { limitInputPixels: target.maxPixels, autoOrient: true };
    let image = (
      input instanceof Uint8Array
        ? sharp(input, options)
        : sharp(input.data, { ...options, raw: { width: input.width, height: input.height, channels: input.channels } })
    ).removeAlpha();
    if (target.size) image = image.resize(target.size.width, target.size.height, { fit: 'cover', position: 'centre' });
    // toColourspace also brings 16-bit images down to 8 bits.
    out = await image.toColourspace(target.channels === 1 ? 'b-w' : 'srgb').raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    const message = errorMessage(err);
    throw new DatasetError(/pixel limit/i.test(message) ? 'too_large' : 'unreadable_image', file, message, { cause: err });
  }
  const { data, info } = out;
  if (info.channels !== target.channels) {
    throw new DatasetError('unreadable_image', file, `decoded to ${info.channels} channels instead of ${target.channels}`);
  }
  return { data, height: info.height, width: info.width, channels: target.channels };
}

/**
 * Decodes every image of `source` straight into one buffer. The first image fixes the size when the target has none;
 * the rest are decoded a few at a time, each copied to its slot and dropped.
 */
export async function decodeImages(
  source: ImageSource,
  target: DecodeTarget,
  maxBytes: number,
  sourceName: string,
): Promise<{ pixels: Uint8Array; height: number; width: number }> {
  const first = await decodeImage(await source.load(0), source.name(0), target);
  const { height, width } = first;
  const imageBytes = height * width * target.channels;
  const totalBytes = source.count * imageBytes;
  if (totalBytes > Math.min(maxBytes, constants.MAX_LENGTH)) {
    throw new DatasetError(
      'too_large',
      sourceName,
      `${source.count} images of ${width}x${height}x${target.channels} need ${totalBytes} bytes, more than the limit of ${maxBytes}; set a smaller imageSize or limit`,
    );
  }
  const pixels = new Uint8Array(totalBytes);
  pixels.set(first.data, 0);
  const rest = Array.from({ length: source.count - 1 }, (_, k) => k + 1);
  await pMap(
    rest,
    async (i) => {
      const image = await decodeImage(await source.load(i), source.name(i), target);
      if (image.height !== height || image.width !== width) {
        throw new DatasetError(
          'inconsistent_size',
          source.name(i),
          `image is ${image.width}x${image.height} but ${source.name(0)} is ${width}x${height}; set imageSize to resize all images to one size`,
        );
      }
      pixels.set(image.data, i * imageBytes);
    },
    { concurrency: DECODE_CONCURRENCY },
  );
  return { pixels, height, width };
}

/** Resizes and/or converts the channels of an already decoded dataset (idx, CIFAR-10). */
export async function convertDataset(
  ds: ImageDataset,
  target: DecodeTarget,
  maxBytes: number,
  sourceName: string,
): Promise<ImageDataset> {
  const imageBytes = ds.height * ds.width * ds.channels;
  const { pixels, height, width } = await decodeImages(
    {
      count: ds.count,
      name: (i) => `${sourceName} (image ${i})`,
      load: async (i) => ({
        data: ds.pixels.subarray(i * imageBytes, (i + 1) * imageBytes),
        height: ds.height,
        width: ds.width,
        channels: ds.channels,
      }),
    },
    target,
    maxBytes,
    sourceName,
  );
  return { ...ds, pixels, height, width, channels: target.channels };
}
