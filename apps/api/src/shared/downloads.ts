import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { CHECKSUM_HEADER } from '@moco/contracts';
import { ObjectNotFoundError, type ObjectStore } from '@moco/storage';
import type { FastifyReply } from 'fastify';
import { ApiError } from './api-error.js';

/** An object ready to stream to a client: its size, sha256, the name it downloads as, and its bytes. */
export interface Download {
  bytes: number;
  sha256: string;
  filename: string;
  contentType: string;
  open(): Promise<Readable>;
}

/** The sha256 kept beside an object at `<sumKey>.sha256`, or null; written only after the object is whole. */
export async function keptChecksum(store: ObjectStore, sumKey: string): Promise<string | null> {
  return (await store.head(`${sumKey}.sha256`)) ? (await store.getBytes(`${sumKey}.sha256`)).toString('utf8') : null;
}

export async function keepChecksum(store: ObjectStore, sumKey: string, sha256: string): Promise<void> {
  await store.put(`${sumKey}.sha256`, Buffer.from(sha256));
}

/** The sha256 of a stored object, computed once (streaming) and then kept at `<sumKey>.sha256`. */
export async function objectChecksum(store: ObjectStore, key: string, sumKey: string): Promise<string> {
  const kept = await keptChecksum(store, sumKey);
  if (kept) return kept;
  const hash = createHash('sha256');
  for await (const chunk of await store.get(key)) hash.update(chunk as Buffer);
  const sha256 = hash.digest('hex');
  await keepChecksum(store, sumKey, sha256);
  return sha256;
}

/** Streams a download as an attachment, with its length and checksum (also the ETag). */
export async function sendDownload(reply: FastifyReply, download: Download): Promise<FastifyReply> {
  const body = await download.open();
  return reply
    .header('content-type', download.contentType)
    .header('content-length', download.bytes)
    .header('content-disposition', `attachment; filename="${download.filename}"`)
    .header(CHECKSUM_HEADER, download.sha256)
    .header('etag', `"${download.sha256}"`)
    .send(body);
}

/** Runs `work` on a resource's stored file: a file gone from the store (a row without its object) is 404, not a 500. */
export async function withStoredFile<T>(what: string, id: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new ApiError(404, 'not_found', `the stored file of ${what} ${id} is missing`);
    throw err;
  }
}
