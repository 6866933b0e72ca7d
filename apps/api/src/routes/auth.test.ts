import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { CreatedKey } from '../keys/key-service.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { insertDataset } from '../testing/fixtures.js';
import { bearer, msUntilRefused, useTestApp } from '../testing/test-app.js';

const t = useTestApp();
let alice: CreatedKey;
let bob: CreatedKey;
let datasetId: string;
let jobId: string;

beforeAll(async () => {
  alice = await t.current.createKey('alice');
  bob = await t.current.createKey('bob');
  datasetId = (await insertDataset(t.current.db, alice.project_id)).id;
  const res = await t.current.app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: bearer(alice),
    payload: { dataset_id: datasetId, hyperparameters: { batch_size: 64, K: 256 } },
  });
  expect(res.statusCode).toBe(201);
  jobId = res.json().id;
});

describe('API keys', () => {
  it('rejects a missing, malformed, unknown or revoked key with 401', async () => {
    const { app, db } = t.current;
    const missing = await app.inject({ url: '/v1/jobs' });
    expect(missing.statusCode).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer');
    expect(missing.json()).toEqual({ error: { code: 'unauthorized', message: expect.stringMatching(/missing API key/), param: null } });
    expect((await app.inject({ url: '/v1/jobs', headers: { authorization: 'Basic abc' } })).statusCode).toBe(401);
    const unknown = await app.inject({ url: '/v1/jobs', headers: bearer('mk_not-a-real-key') });
    expect(unknown.statusCode).toBe(401);
    expect(unknown.json().error.message).toMatch(/invalid or revoked/);

    const carol = await t.current.createKey('carol');
    expect((await app.inject({ url: '/v1/jobs', headers: bearer(carol) })).statusCode).toBe(200);
    await db.apiKey.update({ where: { id: carol.key_id }, data: { revokedAt: new Date() } });
    expect(await msUntilRefused(app, carol)).toBeLessThan(1_000);
  });

  it('refuses a cached key within a second of its revocation, deletion or expiry by a rotation', async () => {
    const { app, db } = t.current;
    for (const change of ['revoke', 'delete', 'expire'] as const) {
      const key = await t.current.createKey(`cached-${change}`);
      // Cached now.
      expect((await app.inject({ url: '/v1/jobs', headers: bearer(key) })).statusCode).toBe(200);
      const where = { id: key.key_id };
      if (change === 'revoke') await db.apiKey.update({ where, data: { revokedAt: new Date() } });
      else if (change === 'expire') await db.apiKey.update({ where, data: { expiresAt: new Date(Date.now() + 100) } });
      else await db.apiKey.delete({ where });
      expect(await msUntilRefused(app, key), change).toBeLessThan(1_000);
    }
  }, 60_000);

  it('never creates a job for a revoked key, even one still cached (its notification not yet heard)', async () => {
    const { app, db } = t.current;
    const dave = await t.current.createKey('dave');
    const daveDataset = (await insertDataset(db, dave.project_id)).id;
    const submit = () =>
      app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(dave), payload: { dataset_id: daveDataset, hyperparameters: { batch_size: 64, K: 256 } } });
    expect((await submit()).statusCode).toBe(201);
    // A notification that has not arrived yet, held back for good: the revocation is not announced.
    await db.$executeRawUnsafe('ALTER TABLE api_keys DISABLE TRIGGER api_keys_changed');
    try {
      await db.apiKey.update({ where: { id: dave.key_id }, data: { revokedAt: new Date() } });
      // Reads still pass on the cached key (until its entry expires or a notification comes)...
      expect((await app.inject({ url: '/v1/jobs', headers: bearer(dave) })).statusCode).toBe(200);
      // ...but the job insert checks the key in its own statement.
      const refused = await submit();
      expect(refused.statusCode).toBe(401);
      expect(refused.json().error).toMatchObject({ code: 'unauthorized', message: 'invalid or revoked API key' });
      expect(await db.job.count({ where: { projectId: dave.project_id } })).toBe(1);
    } finally {
      await db.$executeRawUnsafe('ALTER TABLE api_keys ENABLE TRIGGER api_keys_changed');
    }
  }, 60_000);

  // Leaves the API without its listener for a second (it reconnects): keep it after the tests that need the cache.
  it('drops every cached key when its LISTEN connection is lost (a missed revocation does not keep a key alive)', async () => {
    const { app, db } = t.current;
    const key = await t.current.createKey('unheard');
    expect((await app.inject({ url: '/v1/jobs', headers: bearer(key) })).statusCode).toBe(200);
    const killed = await db.$queryRaw<{ pid: number }[]>`
      SELECT pg_terminate_backend(pid) AS ok, pid FROM pg_stat_activity
      WHERE datname = current_database() AND query ILIKE 'LISTEN moco_api_keys%'`;
    expect(killed.length).toBe(1);
    // Revoked while the API is not listening: no notification reaches it.
    await db.apiKey.update({ where: { id: key.key_id }, data: { revokedAt: new Date() } });
    // At once, not after the listener's reconnection (a second later at the earliest).
    expect(await msUntilRefused(app, key)).toBeLessThan(1_000);
  }, 60_000);

  it("answers 404 for another project's datasets, jobs and their events, metrics and checkpoints", async () => {
    const { app } = t.current;
    for (const url of [
      `/v1/datasets/${datasetId}`,
      `/v1/jobs/${jobId}`,
      `/v1/jobs/${jobId}/events`,
      `/v1/jobs/${jobId}/metrics`,
      `/v1/jobs/${jobId}/checkpoints`,
    ]) {
      expect((await app.inject({ url, headers: bearer(alice) })).statusCode, url).toBe(200);
      const res = await app.inject({ url, headers: bearer(bob) });
      expect(res.statusCode, url).toBe(404);
      expect(res.json().error.code).toBe('not_found');
    }
    const cancel = await app.inject({ method: 'POST', url: `/v1/jobs/${jobId}/cancel`, headers: bearer(bob) });
    expect(cancel.statusCode).toBe(404);
    const sse = await fetch(`${t.current.url}/v1/jobs/${jobId}/events`, { headers: { ...bearer(bob), accept: 'text/event-stream' } });
    expect(sse.status).toBe(404);
    // Nor can bob start a job on alice's dataset.
    const create = await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(bob), payload: { dataset_id: datasetId } });
    expect(create.statusCode).toBe(400);
    expect(create.json().error.param).toBe('dataset_id');
    // Lists hold only the caller's own.
    expect((await app.inject({ url: '/v1/jobs', headers: bearer(bob) })).json().data).toEqual([]);
    expect((await app.inject({ url: '/v1/datasets', headers: bearer(bob) })).json().data).toEqual([]);
    expect((await app.inject({ url: `/v1/jobs?project_id=${alice.project_id}`, headers: bearer(bob) })).statusCode).toBe(404);
  });

  it('lets admin keys read every project, or one', async () => {
    const { app } = t.current;
    const admin = await t.current.createKey('operators', { admin: true });
    expect((await app.inject({ url: `/v1/jobs/${jobId}`, headers: bearer(admin) })).statusCode).toBe(200);
    const all = (await app.inject({ url: '/v1/jobs', headers: bearer(admin) })).json();
    expect(all.data.map((j: { id: string }) => j.id)).toContain(jobId);
    const bobs = (await app.inject({ url: `/v1/jobs?project_id=${bob.project_id}`, headers: bearer(admin) })).json();
    expect(bobs.data).toEqual([]);
    // New resources go to the admin's own project (acting on others': routes/admin/admin.test.ts).
    const create = await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(admin), payload: { dataset_id: datasetId } });
    expect(create.statusCode).toBe(400);
    expect(create.json().error.param).toBe('dataset_id');
  });

  it('keys:create makes the project once and prints a working key', async () => {
    const script = new URL('../scripts/keys.ts', import.meta.url).pathname;
    const run = async (...args: string[]) => {
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script, 'create', ...args], {
        env: { ...process.env, DATABASE_URL: t.current.config.DATABASE_URL },
      });
      return JSON.parse(stdout) as CreatedKey;
    };
    const first = await run('--project', 'dave', '--name', 'ci', '--admin');
    expect(first).toMatchObject({ project_name: 'dave', name: 'ci', role: 'admin', key: expect.stringMatching(/^mk_/) });
    // The same service, with the project now existing, adds a key to it.
    expect((await t.current.createKey('dave')).project_id).toBe(first.project_id);
    expect((await t.current.app.inject({ url: '/v1/datasets', headers: bearer(first.key) })).statusCode).toBe(200);
    const stored = await t.current.db.apiKey.findUniqueOrThrow({ where: { id: first.key_id } });
    expect(stored.secretHash).not.toContain(first.key.slice(3));
  });
});
