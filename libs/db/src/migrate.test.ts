import { cp, mkdtemp, readdir, rm, writeFile, appendFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from './client.js';
import { newId, hasPrefix } from './ids.js';
import { transitionJob } from './job-status.js';
import { migrate, MIGRATIONS_DIR } from './migrate.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';

describe('migrate', () => {
  let db: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    db = await createTestDatabase({ migrated: false });
    dir = await mkdtemp(path.join(os.tmpdir(), 'migrations-'));
    await cp(MIGRATIONS_DIR, dir, { recursive: true });
  });
  afterAll(async () => {
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('applies each migration once, even when two migrators race', async () => {
    const [a, b] = await Promise.all([migrate(db.url, dir), migrate(db.url, dir)]);
    // Every migration of the repository, each applied by one of the two.
    const all = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    expect(all[0]).toBe('20261128120000_init');
    expect([...a, ...b].sort()).toEqual(all);
    expect(await migrate(db.url, dir)).toEqual([]);
  });

  it('applies a new migration and refuses an edited one', async () => {
    await cp(path.join(dir, '20261128120000_init'), path.join(dir, '20991231000000_extra'), { recursive: true });
    await writeFile(path.join(dir, '20991231000000_extra', 'migration.sql'), 'CREATE TABLE "extra" ("id" INT);');
    expect(await migrate(db.url, dir)).toEqual(['20991231000000_extra']);
    await appendFile(path.join(dir, '20991231000000_extra', 'migration.sql'), '\n-- edited');
    await expect(migrate(db.url, dir)).rejects.toThrow(/20991231000000_extra was edited after it was applied/);
  });

  it('rolls back a failing migration and names it', async () => {
    await rm(path.join(dir, '20991231000000_extra'), { recursive: true });
    const fresh = await createTestDatabase({ migrated: false });
    try {
      await cp(path.join(dir, '20261128120000_init'), path.join(dir, '20991231000001_bad'), { recursive: true });
      await writeFile(path.join(dir, '20991231000001_bad', 'migration.sql'), 'CREATE TABLE "half" ("id" INT); SELECT nope;');
      await expect(migrate(fresh.url, dir)).rejects.toThrow(/migration 20991231000001_bad failed/);
      const client = createDb(fresh.url);
      const tables = await client.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'half'`;
      expect(Number(tables[0]!.n)).toBe(0);
      await client.$disconnect();
    } finally {
      await fresh.drop();
    }
  });
});

describe('transitionJob', () => {
  let tdb: TestDatabase;
  let db: Db;
  beforeAll(async () => {
    tdb = await createTestDatabase();
    db = createDb(tdb.url);
  });
  afterAll(async () => {
    await db?.$disconnect();
    await tdb?.drop();
  });

  it('moves only from the expected states and records one event per move', async () => {
    const projectId = newId('proj');
    const datasetId = newId('ds');
    const jobId = newId('job');
    expect(hasPrefix(jobId, 'job')).toBe(true);
    await db.project.create({ data: { id: projectId, name: 'p' } });
    await db.dataset.create({ data: { id: datasetId, projectId, name: 'd', source: 'upload', uri: 'file:///x' } });
    await db.job.create({
      data: { id: jobId, projectId, datasetId, hyperparameters: {}, seed: 0, checkpointEvery: 10, totalSteps: 5 },
    });
    const start = { from: ['queued'] as const, to: 'running' as const, event: { type: 'started' as const, message: 'started', data: { attempt: 1, worker_id: 'test-worker' } } };
    const results = await Promise.all([transitionJob(db, jobId, start), transitionJob(db, jobId, start)]);
    expect(results.sort()).toEqual([false, true]);
    const events = await db.jobEvent.findMany({ where: { jobId } });
    expect(events.map((e) => [e.type, (e.data as { status: string }).status])).toEqual([['started', 'running']]);
  });
});
