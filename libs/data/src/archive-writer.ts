import { buffer } from 'node:stream/consumers';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { ImageDataset } from './image-dataset.js';

export type TarEntry = { name: string; data: Uint8Array | string } | { name: string; type: 'symlink' | 'link'; linkname: string };

/** A tar (or tar.gz) of the given entries; links are allowed so tests can build hostile archives too. */
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

/**
 * A 1-channel labelled dataset as a tar of gzipped idx files, the MNIST layout
 * (`<prefix>-images-idx3-ubyte.gz` and `<prefix>-labels-idx1-ubyte.gz`) that readDataset and the
 * upload API accept: how the demo and tests ship a subset of Fashion-MNIST.
 */
export async function idxArchive(ds: ImageDataset, prefix: 'train' | 't10k' = 'train'): Promise<Buffer> {
  if (ds.channels !== 1) throw new Error(`idx archives hold 1-channel images, got ${ds.channels}`);
  const entries: TarEntry[] = [
    { name: `${prefix}-images-idx3-ubyte.gz`, data: gzipSync(idxFile([ds.count, ds.height, ds.width], ds.pixels)) },
  ];
  if (ds.labels) {
    entries.push({ name: `${prefix}-labels-idx1-ubyte.gz`, data: gzipSync(idxFile([ds.count], Uint8Array.from(ds.labels))) });
  }
  return tarArchive(entries);
}
