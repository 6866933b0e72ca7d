import { MocoApiError, MocoClient } from '@moco/sdk';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestApp } from '../../apps/api/src/testing/test-app.js';

// The SDK's key management and its 429 handling against the real API (limits counted in Redis).

const WINDOW_S = 4;

describe('MocoClient admin.keys and rate limits', () => {
  const t = useTestApp({ RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_S: String(WINDOW_S) });
  let adminKey: string;
  beforeAll(async () => {
    adminKey = (await t.current.createKey('operators', { admin: true })).key;
  });

  /** A client of a fresh admin key (a budget of its own), retrying fast unless the server says otherwise. */
  async function freshAdmin(): Promise<{ client: MocoClient; key: string }> {
    const { key } = await new MocoClient({ baseUrl: t.current.url, apiKey: adminKey }).admin.keys.create({ project_name: 'ops', role: 'admin' });
    return { client: new MocoClient({ baseUrl: t.current.url, apiKey: key, retryDelayMs: 10, maxRetries: 3 }), key };
  }

  it('creates, lists, rotates and revokes keys', async () => {
    const admin = new MocoClient({ baseUrl: t.current.url, apiKey: (await t.current.createKey('operators', { admin: true })).key });
    const created = await admin.admin.keys.create({ project_name: 'acme', name: 'ci' });
    expect(created).toMatchObject({ name: 'ci', role: 'member', key: expect.stringMatching(/^mk_/) });
    const acme = new MocoClient({ baseUrl: t.current.url, apiKey: created.key });
    expect(await acme.models.list()).toEqual([]);

    const listed = [];
    for await (const k of admin.admin.keys.list({ projectId: created.project_id, pageSize: 1 })) listed.push(k);
    expect(listed).toEqual([expect.objectContaining({ id: created.id, prefix: created.prefix })]);
    expect(listed[0]).not.toHaveProperty('key');

    const rotated = await admin.admin.keys.rotate(created.id, { gracePeriodS: 60 });
    expect(rotated.previous).toMatchObject({ id: created.id, revoked_at: null, expires_at: expect.any(String) });
    expect(await acme.models.list()).toEqual([]);
    expect((await admin.admin.keys.revoke(created.id)).revoked_at).not.toBeNull();
    await expect(acme.models.list()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
    expect(await new MocoClient({ baseUrl: t.current.url, apiKey: rotated.key }).models.list()).toEqual([]);

    await expect(acme.admin.keys.list().next()).rejects.toBeInstanceOf(MocoApiError);
  });

  it('waits out Retry-After on 429 and then succeeds', async () => {
    const { client, key } = await freshAdmin();
    // Spend the budget, seen from outside the SDK: the answer that says how long to wait.
    let retryAfter = 0;
    for (let i = 0; i < 10 && !retryAfter; i++) {
      const res = await fetch(`${t.current.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
      if (res.status === 429) retryAfter = Number(res.headers.get('retry-after'));
      await res.body?.cancel();
    }
    // More than a second left: the client's own backoff (10 ms, doubling, 3 retries) is over long before.
    expect(retryAfter).toBeGreaterThan(1);
    const started = performance.now();
    expect(await client.models.list()).toEqual([]);
    expect(performance.now() - started).toBeGreaterThan((retryAfter - 1) * 1000);
  });

  it('retries a 429 even for a request that is not safe to repeat, and makes one key', async () => {
    const { client } = await freshAdmin();
    for (let i = 0; i < 3; i++) await client.models.list();
    const created = await client.admin.keys.create({ project_name: 'once' });
    const keys = await t.current.db.apiKey.findMany({ where: { projectId: created.project_id } });
    expect(keys.map((k) => k.id)).toEqual([created.id]);
  });
});
