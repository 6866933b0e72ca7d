import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { CreatedKey } from '../keys/key-service.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { insertDataset } from '../testing/fixtures.js';
import { bearer, useTestApp } from '../testing/test-app.js';

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
    expect((await app.inject({ url: '/v1/jobs', headers: bearer(carol) })).statusCode).toBe(401);
  });

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
