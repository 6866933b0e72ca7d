import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CHECKSUM_HEADER, type ExportFormat, type ExportOutputName } from '@moco/contracts';
import type { Http } from './http.js';

export interface ExportOptions {
  /** `onnx` (default), `pytorch`, or `mocotens` (the resumable training state). */
  format?: ExportFormat;
  /** ONNX only: `backbone` (default) or `head` (both outputs). */
  output?: ExportOutputName;
  signal?: AbortSignal;
}

/** A download under way (a checkpoint export, a dataset file): read `body` to its end (or destroy it). */
export interface Download {
  body: Readable;
  bytes: number;
  /** The server's sha256 of the file (hex); `downloadToFile` checks it. */
  sha256: string;
  /** The name the server suggests (Content-Disposition). */
  filename: string;
}

/** Opens a download route of the API (Content-Length, Content-Disposition, the checksum header). */
export async function openDownload(
  http: Http,
  route: string,
  opts: { query?: Record<string, string | undefined>; fallbackName: string; signal?: AbortSignal },
): Promise<Download> {
  const res = await http.fetch(route, {
    query: opts.query,
    signal: opts.signal,
    // A large download takes as long as it takes: only the caller's signal ends it.
    timeoutMs: 0,
  });
  return {
    body: Readable.fromWeb(res.body! as Parameters<typeof Readable.fromWeb>[0]),
    bytes: Number(res.headers.get('content-length')),
    sha256: res.headers.get(CHECKSUM_HEADER) ?? '',
    filename: /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? opts.fallbackName,
  };
}

export function openExport(http: Http, id: string, opts: ExportOptions): Promise<Download> {
  const format = opts.format ?? 'onnx';
  return openDownload(http, `/v1/checkpoints/${encodeURIComponent(id)}/export`, {
    query: { format, output: opts.output },
    fallbackName: `${id}.${format}`,
    signal: opts.signal,
  });
}

/**
 * Writes a download to `path`: to a temporary file beside it first, renamed into place only once
 * whole and matching the server's checksum, so `path` never holds a partial or corrupt file.
 */
export async function downloadToFile(open: () => Promise<Download>, what: string, path: string): Promise<{ path: string; bytes: number; sha256: string }> {
  const download = await open();
  const hash = createHash('sha256');
  let bytes = 0;
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const partial = `${path}.partial-${process.pid}`;
  try {
    await pipeline(download.body, hashing, createWriteStream(partial));
    const sha256 = hash.digest('hex');
    if (bytes !== download.bytes || sha256 !== download.sha256) {
      throw new Error(`${what} arrived damaged: ${bytes} bytes, sha256 ${sha256}; the server sent ${download.bytes} bytes, sha256 ${download.sha256}`);
    }
    await rename(partial, path);
    return { path, bytes, sha256 };
  } finally {
    await rm(partial, { force: true });
  }
}
