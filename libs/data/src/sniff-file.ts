import { open } from 'node:fs/promises';
import { DatasetError, errorMessage } from './dataset-errors.js';
import { gunzippedHead, isGzip } from './gzip.js';
import { IDX_IMAGES_MAGIC, idxMagic } from './idx-reader.js';

export type FileKind = 'zip' | 'tar' | 'idx' | 'unknown';

const HEAD_BYTES = 512;

function isZip(head: Uint8Array): boolean {
  // Local file header, or the end-of-central-directory record that alone makes an empty zip.
  return head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6));
}

export function isTar(head: Uint8Array): boolean {
  // POSIX ("ustar\0") and GNU ("ustar  ") headers both start their magic with "ustar" at offset 257.
  return Buffer.from(head.subarray(257, 262)).toString('latin1') === 'ustar';
}

function kindOf(head: Uint8Array): FileKind {
  if (isZip(head)) return 'zip';
  if (isTar(head)) return 'tar';
  if (idxMagic(head) === IDX_IMAGES_MAGIC) return 'idx';
  return 'unknown';
}

/** What a file holds, by its magic bytes (looking inside gzip), never by its name. */
export async function sniffFile(file: string): Promise<{ kind: FileKind; gzip: boolean }> {
  let head: Uint8Array;
  try {
    const handle = await open(file);
    try {
      const buffer = Buffer.alloc(HEAD_BYTES);
      const { bytesRead } = await handle.read(buffer, 0, HEAD_BYTES, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new DatasetError('unreadable_file', file, errorMessage(err), { cause: err });
  }
  if (isGzip(head)) return { kind: kindOf(await gunzippedHead(file, HEAD_BYTES)), gzip: true };
  return { kind: kindOf(head), gzip: false };
}
