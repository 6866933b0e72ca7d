import { randomUUID } from 'node:crypto';
import { mkdir, open, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';

export class SpoolTooLarge extends Error {
  override readonly name = 'SpoolTooLarge';

  constructor(readonly maxBytes: number) {
    super(`more than the limit of ${maxBytes} bytes`);
  }
}

/**
 * Writes a stream to a new file in `dir`, failing with SpoolTooLarge as soon as it passes
 * `maxBytes`. The file is removed on any failure. The source is not destroyed on failure, so an
 * HTTP request can still be answered (413) instead of having its socket reset mid-upload.
 */
export async function spoolToTempFile(source: Readable, dir: string, maxBytes: number): Promise<{ path: string; bytes: number }> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `moco-upload-${randomUUID()}`);
  const handle = await open(file, 'wx');
  let bytes = 0;
  try {
    for await (const chunk of source.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > maxBytes) throw new SpoolTooLarge(maxBytes);
      await handle.write(chunk);
    }
    await handle.close();
    return { path: file, bytes };
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(file, { force: true });
    throw err;
  }
}
