import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import tar from 'tar-stream';
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

export type TarEntry = { name: string; data: Uint8Array | string } | { name: string; type: 'symlink' | 'link'; linkname: string };

export async function tarArchive(entries: TarEntry[], gzip = false): Promise<Buffer> {
  const pack = tar.pack();
  for (const entry of entries) {
    if ('data' in entry) pack.entry({ name: entry.name }, Buffer.from(entry.data));
    else pack.entry({ name: entry.name, type: entry.type, linkname: entry.linkname });
  }
  pack.finalize();
  const bytes = await buffer(pack);
  return gzip ? gzipSync(bytes) : bytes;
}

/** An idx file of unsigned bytes: magic 0x0000080<rank>, big-endian dimensions, data. */
export function idxFile(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(0x800 + dims.length, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}

/** The DatasetError a read fails with. */
export async function readError(promise: Promise<unknown>): Promise<DatasetError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(DatasetError);
  return err as DatasetError;
}
