import { DatasetError } from './dataset-errors.js';
import type { TreeFile } from './file-tree.js';
import { gunzipIfGzipped, gunzippedHead, isGzip } from './gzip.js';
import type { ImageDataset } from './image-dataset.js';

// The idx format (MNIST, Fashion-MNIST) is a 4-byte magic, big-endian uint32 dimensions, then the raw bytes:
// simpler to parse here than to depend on a package for it.
export const IDX_IMAGES_MAGIC = 0x00000803; // unsigned bytes, 3 dimensions
export const IDX_LABELS_MAGIC = 0x00000801; // unsigned bytes, 1 dimension

export function idxMagic(head: Uint8Array): number | undefined {
  return head.length >= 4 ? Buffer.from(head.buffer, head.byteOffset, 4).readUInt32BE(0) : undefined;
}

function headerBytesOf(magic: number): number {
  return 4 + 4 * (magic & 0xff);
}

/** The big-endian uint32 dimensions after the magic. */
function dimsOf(header: Uint8Array, rank: number): number[] {
  const view = Buffer.from(header.buffer, header.byteOffset, header.length);
  return Array.from({ length: rank }, (_, d) => view.readUInt32BE(4 + 4 * d));
}

/** The dimensions and data of an idx file of unsigned bytes with `rank` dimensions. */
function parseIdx(bytes: Uint8Array, file: string, magic: number): { dims: number[]; data: Uint8Array } {
  const rank = magic & 0xff;
  const headerBytes = headerBytesOf(magic);
  const found = idxMagic(bytes);
  if (found !== magic) {
    const what = found === undefined ? 'file is too short' : `magic number 0x${found.toString(16).padStart(8, '0')}`;
    throw new DatasetError('bad_idx', file, `not an idx file of ${rank}-d unsigned bytes (expected magic 0x${magic.toString(16).padStart(8, '0')}, ${what})`);
  }
  if (bytes.length < headerBytes) throw new DatasetError('bad_idx', file, 'truncated idx header');
  const dims = dimsOf(bytes, rank);
  const dataBytes = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== headerBytes + dataBytes) {
    throw new DatasetError('bad_idx', file, `header says ${dims.join('x')} = ${dataBytes} bytes but the file holds ${bytes.length - headerBytes}`);
  }
  return { dims, data: bytes.subarray(headerBytes) };
}

/**
 * An idx file's bytes, decompressed if gzipped. A gzip whose header declares more than `maxBytes`
 * is refused from its first bytes: a bomb costs nothing to turn down.
 */
async function idxBytes(file: TreeFile, magic: number, maxBytes: number): Promise<Uint8Array> {
  const raw = await file.read();
  const headerBytes = headerBytesOf(magic);
  const head = isGzip(raw) ? await gunzippedHead(file.name, headerBytes, raw) : undefined;
  if (head && head.length === headerBytes && idxMagic(head) === magic) {
    const declared = headerBytes + dimsOf(head, magic & 0xff).reduce((a, b) => a * b, 1);
    if (declared > maxBytes) throw new DatasetError('too_large', file.name, `idx header declares ${declared} bytes, more than the limit of ${maxBytes}`);
  }
  return gunzipIfGzipped(raw, file.name, maxBytes);
}

/** Reads an idx3 image file and optional idx1 label file, gzip or not; the pixels are a view of the decompressed file. */
export async function readIdx(
  images: TreeFile,
  labels: TreeFile | undefined,
  options: { limit: number; maxBytes: number },
): Promise<ImageDataset> {
  const parsed = parseIdx(await idxBytes(images, IDX_IMAGES_MAGIC, options.maxBytes), images.name, IDX_IMAGES_MAGIC);
  const [total = 0, height = 0, width = 0] = parsed.dims;
  // A zero dimension makes the data length check pass with any image count (0 bytes expected): billions of empty images.
  if (total > 0 && (height === 0 || width === 0)) {
    throw new DatasetError('bad_idx', images.name, `header says ${total} images of ${height}x${width}: an image needs at least one pixel`);
  }
  const count = Math.min(total, options.limit);
  const all = parsed.data.subarray(0, count * height * width);
  // A copy when limited, so the view does not keep the whole decompressed file alive.
  const ds: ImageDataset = { count, height, width, channels: 1, pixels: count < total ? all.slice() : all };
  if (labels) {
    const parsedLabels = parseIdx(await idxBytes(labels, IDX_LABELS_MAGIC, options.maxBytes), labels.name, IDX_LABELS_MAGIC);
    if (parsedLabels.dims[0] !== total) {
      throw new DatasetError('bad_idx', labels.name, `has ${parsedLabels.dims[0]} labels but ${images.name} has ${total} images`);
    }
    ds.labels = Int32Array.from(parsedLabels.data.subarray(0, count));
  }
  return ds;
}
