import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { processAlive } from '@moco/service';

export class SpoolTooLarge extends Error {
  override readonly name = 'SpoolTooLarge';

  constructor(readonly maxBytes: number) {
    super(`more than the limit of ${maxBytes} bytes`);
  }
}

// `moco-upload-<pid>-<uuid>`: the pid tells a start-up sweep whose file it is.
const SPOOL_NAME = /^moco-upload-(\d+)-[0-9a-f-]{36}$/;

/**
 * Writes a stream to a new file in `dir`, failing with SpoolTooLarge as soon as it passes
 * `maxBytes`. The file is removed on any failure. The source is not destroyed on failure, so an
 * HTTP request can still be answered (413) instead of having its socket reset mid-upload.
 */
export async function spoolToTempFile(source: Readable, dir: string, maxBytes: number): Promise<{ path: string; bytes: number }> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `moco-upload-${process.pid}-${randomUUID()}`);
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


/**
 * At start-up, before any upload: removes the spool files that API processes which died mid-upload
 * left in `dir` (this replica's own folder). Files of this very pid are a previous life's (in a
 * container the API is pid 1 every time); those of a live pid belong to another API on this host.
 */
export async function removeDeadSpools(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  });
  const dead = names.filter((name) => {
    const pid = Number(SPOOL_NAME.exec(name)?.[1] ?? NaN);
    return !Number.isNaN(pid) && (pid === process.pid || !processAlive(pid));
  });
  await Promise.all(dead.map((name) => rm(path.join(dir, name), { force: true })));
  return dead;
}
