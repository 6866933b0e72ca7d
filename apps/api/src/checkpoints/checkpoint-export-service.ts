import { createHash } from 'node:crypto';
import type { ExportQuery } from '@moco/contracts';
import { hasPrefix, type CheckpointModel, type Db } from '@moco/db';
import { CheckpointTransform } from '@moco/models';
import type { ObjectStore } from '@moco/storage';
import { notFound } from '../shared/api-error.js';
import { keepChecksum, keptChecksum, objectChecksum, withStoredFile, type Download } from '../shared/downloads.js';
import { convertInThread } from './convert-in-thread.js';

export type CheckpointExportService = ReturnType<typeof createCheckpointExportService>;

/**
 * Checkpoint exports. A conversion runs once: its result is kept in the object store beside the
 * checkpoint (`projects/<project>/exports/<checkpoint id>/...`) with its checksum written after it, so
 * a kept checksum means a whole export. Exports are deterministic, so two requests converting at
 * once write the same bytes. The MOCOTENS state is the checkpoint object itself.
 */
export function createCheckpointExportService({ db, store }: { db: Db; store: ObjectStore }) {
  return {
    async download(projectId: string | undefined, id: string, query: ExportQuery): Promise<Download> {
      // Strings that cannot be an id are not looked up.
      const row = hasPrefix(id, 'ckpt') ? await db.checkpoint.findFirst({ where: { id, projectId } }) : null;
      if (!row) throw notFound('checkpoint', id);
      return withStoredFile('checkpoint', id, () => exportOf(row, query));
    },
  };

  async function exportOf(row: CheckpointModel, query: ExportQuery): Promise<Download> {
    const folder = `projects/${row.projectId}/exports/${row.id}`;
    if (query.format === 'mocotens') {
      const sha256 = await objectChecksum(store, row.objectKey, `${folder}/state.mocotens`);
      const open = () => store.get(row.objectKey);
      return { bytes: Number(row.bytes), sha256, filename: `${row.id}.mocotens`, contentType: 'application/octet-stream', open };
    }
    const [key, filename] =
      query.format === 'onnx' ? [`${folder}/${query.output}.onnx`, `${row.id}-${query.output}.onnx`] : [`${folder}/encoder.pth.tar`, `${row.id}.pth.tar`];
    let sha256 = await keptChecksum(store, key);
    if (!sha256) {
      const bytes = await convertInThread({
        state: await store.getBytes(row.objectKey),
        format: query.format,
        output: query.output,
        preprocessing: CheckpointTransform.parse(row.transform),
      });
      sha256 = createHash('sha256').update(bytes).digest('hex');
      await store.put(key, bytes);
      await keepChecksum(store, key, sha256);
    }
    const info = await store.head(key);
    if (!info) throw new Error(`export ${key} has a checksum but no object`);
    const contentType = query.format === 'onnx' ? 'application/onnx' : 'application/octet-stream';
    return { bytes: info.bytes, sha256, filename, contentType, open: () => store.get(key) };
  }
}
