import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { newId } from '@moco/db';
import { describe, expect, it } from 'vitest';
import { insertDataset } from '../testing/fixtures.js';
import { useTestApp } from '../testing/test-app.js';
import { createDatasetRepository } from './dataset-repository.js';
import { sweepUploadsAtStart } from './upload-sweep.js';

const t = useTestApp();

describe('sweepUploadsAtStart', () => {
  it('removes dead spool files, stale pending uploads with their objects and unrecorded dataset objects, and nothing else', async () => {
    const { db, store, tempDir } = t.current;
    const { project_id: projectId } = await t.current.createKey('sweep');
    const kept = await insertDataset(db, projectId);
    await store.put(`projects/${projectId}/datasets/${kept.id}/fixture.gz`, Buffer.from('kept'));
    // A pending upload whose API died after writing its object.
    const stale = await insertDataset(db, projectId, { status: 'pending' });
    await store.put(`projects/${projectId}/datasets/${stale.id}/fixture.gz`, Buffer.from('stale'));
    // An object no row names, as an API that stored before recording left it.
    const orphanKey = `projects/${projectId}/datasets/${newId('ds')}/dataset.tar`;
    await store.put(orphanKey, Buffer.from('orphan'));
    // Spool files of a process that has exited, and of one that lives (the test runner's parent).
    const deadPid = spawnSync(process.execPath, ['-e', '0']).pid;
    const dead = `moco-upload-${deadPid}-${randomUUID()}`;
    const live = `moco-upload-${process.ppid}-${randomUUID()}`;
    await writeFile(path.join(tempDir, dead), 'dead');
    await writeFile(path.join(tempDir, live), 'live');

    const report = await sweepUploadsAtStart({ repo: createDatasetRepository(db), store, spoolDir: tempDir, graceS: 0 });

    expect(report).toEqual({ spoolFiles: [dead], pendingRows: [stale.id], partials: 0, orphanObjects: [orphanKey] });
    expect(await t.current.tempFiles()).toEqual([live]);
    expect((await db.dataset.findMany()).map((d) => d.id)).toEqual([kept.id]);
    expect(await t.current.objects('projects/')).toEqual([`projects/${projectId}/datasets/${kept.id}/fixture.gz`]);
  });
});
