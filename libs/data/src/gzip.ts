import { createReadStream } from 'node:fs';
import { pipeline, Readable } from 'node:stream';
import { promisify } from 'node:util';
import { createGunzip, gunzip } from 'node:zlib';
import { DatasetError, errorMessage } from './dataset-errors.js';

const gunzipAsync = promisify(gunzip);

export function isGzip(head: Uint8Array): boolean {
  return head[0] === 0x1f && head[1] === 0x8b;
}

function corruptGzip(err: unknown, file: string): DatasetError {
  return new DatasetError('bad_archive', file, `corrupt gzip data: ${errorMessage(err)}`, { cause: err });
}

/** Decompresses `data` if it is gzip (by its magic bytes, not its name); zlib stops at maxBytes, so a bomb never fills memory. */
export async function gunzipIfGzipped(data: Uint8Array, file: string, maxBytes: number): Promise<Uint8Array> {
  if (!isGzip(data)) return data;
  try {
    return await gunzipAsync(data, { maxOutputLength: maxBytes });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_BUFFER_TOO_LARGE') throw corruptGzip(err, file);
    throw new DatasetError('too_large', file, `decompresses to more than the limit of ${maxBytes} bytes`, { cause: err });
  }
}

/**
 * The first `length` decompressed bytes of a gzip file (read from disk, or `data` when given), to
 * tell what it wraps without inflating all of it.
 */
export async function gunzippedHead(file: string, length: number, data?: Uint8Array): Promise<Uint8Array> {
  const inflated = createGunzip();
  pipeline(data ? Readable.from([data]) : createReadStream(file), inflated, () => {});
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of inflated as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= length) break;
    }
  } catch (err) {
    throw corruptGzip(err, file);
  }
  return Buffer.concat(chunks).subarray(0, length);
}
