import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, expect } from 'vitest';
import { DatasetError } from './dataset-errors.js';

/** A fresh temporary folder for the calling test file (its path is set before the file's own beforeAll runs), removed after its tests. */
export function useTempDir(): { path: string } {
  const dir = { path: '' };
  beforeAll(async () => {
    dir.path = await mkdtemp(join(tmpdir(), 'moco-data-'));
  });
  afterAll(() => rm(dir.path, { recursive: true, force: true }));
  return dir;
}

export async function writeBytes(file: string, data: Uint8Array | string): Promise<string> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, data);
  return file;
}

/** Encodes HWC pixels as PNG or JPEG. */
export async function encodeImage(
  pixels: Uint8Array,
  image: { width: number; height: number; channels: 1 | 3 | 4 },
  format: 'png' | 'jpeg' = 'png',
): Promise<Buffer> {
  const raw = sharp(pixels, { raw: image });
  // Without an explicit colourspace, sharp writes one-channel input as RGB.
  const grey = image.channels === 1 ? raw.toColourspace('b-w') : raw;
  return format === 'png' ? grey.png().toBuffer() : grey.jpeg({ quality: 90 }).toBuffer();
}

/** A solid-colour image of the given size. */
export async function solidImage(width: number, height: number, channels: 1 | 3, value: number, format: 'png' | 'jpeg' = 'png'): Promise<Buffer> {
  return encodeImage(new Uint8Array(width * height * channels).fill(value), { width, height, channels }, format);
}

export { idxFile, tarArchive, type TarEntry } from './archive-writer.js';

/** The DatasetError a read fails with. */
export async function readError(promise: Promise<unknown>): Promise<DatasetError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(DatasetError);
  return err as DatasetError;
}
