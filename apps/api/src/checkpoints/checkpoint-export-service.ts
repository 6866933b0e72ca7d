import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { ExportQuery } from '@moco/contracts';
import { hasPrefix, type Db } from '@moco/db';
import { CheckpointTransform } from '@moco/models';
import type { ObjectStore } from '@moco/storage';
import { notFound } from '../shared/api-error.js';
import { convertInThread } from './convert-in-thread.js';

/** An export ready to stream: its object, size, sha256 and the name it downloads as. */
export interface ExportArtifact {
  key: string;
  bytes: number;
  sha256: string;
  filename: string;
  contentType: string;
}

export type CheckpointExportService = ReturnType<typeof createCheckpointExportService>;

/**
 * Checkpoint exports. A conversion runs once: its result is kept in the object store beside the
 * checkpoint (`.../exports/<checkpoint id>/...`), with a `.sha256` object written after it, so a
 * present checksum means a whole export. Exports are deterministic, so two requests converting at
 * once write the same bytes. The MOCOTENS state is the checkpoint object itself; only its checksum
 * is computed (once, streaming) and kept.
 */
export function createCheckpointExportService({ db, store }: { db: Db; store: ObjectStore }) {
  async function cachedChecksum(key: string): Promise<string | null> {
    return (await store.head(`${key}.sha256`)) ? (await store.getBytes(`${key}.sha256`)).toString('utf8') : null;
  }

  return {
    async artifact(projectId: string | undefined, id: string, query: ExportQuery): Promise<ExportArtifact> {
      // Strings that cannot be an id are not looked up (Postgres refuses some, e.g. NUL bytes).
      const row = hasPrefix(id, 'ckpt') ? await db.checkpoint.findFirst({ where: { id, projectId } }) : null;
      if (!row) throw notFound('checkpoint', id);
      const folder = `projects/${row.projectId}/exports/${row.id}`;
      if (query.format === 'mocotens') {
        const sumKey = `${folder}/state.mocotens`;
        let sha256 = await cachedChecksum(sumKey);
        if (!sha256) {
          sha256 = await sha256Of(await store.get(row.objectKey));
          await store.put(`${sumKey}.sha256`, Buffer.from(sha256));
        }
        return { key: row.objectKey, bytes: Number(row.bytes), sha256, filename: `${row.id}.mocotens`, contentType: 'application/octet-stream' };
      }
      const [key, filename] =
        query.format === 'onnx' ? [`${folder}/${query.output}.onnx`, `${row.id}-${query.output}.onnx`] : [`${folder}/encoder.pth.tar`, `${row.id}.pth.tar`];
      let sha256 = await cachedChecksum(key);
      if (!sha256) {
        const bytes = await convertInThread({
          state: await store.getBytes(row.objectKey),
          format: query.format,
          output: query.output,
          preprocessing: CheckpointTransform.parse(row.transform),
        });
        sha256 = createHash('sha256').update(bytes).digest('hex');
        await store.put(key, bytes);
        await store.put(`${key}.sha256`, Buffer.from(sha256));
      }
      const info = await store.head(key);
      if (!info) throw new Error(`export ${key} has a checksum but no object`);
      const contentType = query.format === 'onnx' ? 'application/onnx' : 'application/octet-stream';
      return { key, bytes: info.bytes, sha256, filename, contentType };
    },

    open(artifact: ExportArtifact): Promise<Readable> {
      return store.get(artifact.key);
    },
  };
}

async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
