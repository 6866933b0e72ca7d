import { beforeAll, describe, expect, it } from 'vitest';
import type { CreatedKey } from '../../keys/key-service.js';
import { bearer, msUntilRefused, useTestApp } from '../../testing/test-app.js';

const t = useTestApp();
let admin: CreatedKey;
let alice: CreatedKey;

async function call(key: CreatedKey | string, url: string, method: 'GET' | 'POST' = 'GET', payload?: object) {
  const res = await t.current.app.inject({ method, url, headers: bearer(key), ...(payload && { payload }) });
  return { status: res.statusCode, body: res.json() };
}

/** Whether the key opens the API (a /v1 read answers 200 rather than 401). */
async function works(secret: string): Promise<boolean> {
  const { status } = await call(secret, '/v1/datasets');
  expect([200, 401]).toContain(status);
  return status === 200;
}

beforeAll(async () => {
  [admin, alice] = await Promise.all([t.current.createKey('operators', { admin: true }), t.current.createKey('alice')]);
});

describe('API key management', () => {
  it('answers 403 forbidden to member keys on every key route', async () => {
    for (const [method, url] of [
      ['GET', '/v1/admin/keys'],
      ['POST', '/v1/admin/keys'],
      ['POST', `/v1/admin/keys/${alice.key_id}/revoke`],
      ['POST', `/v1/admin/keys/${alice.key_id}/rotate`],
    ] as const) {
      const res = await call(alice, url, method, method === 'POST' ? { project_name: 'x' } : undefined);
      expect(res, url).toMatchObject({ status: 403, body: { error: { code: 'forbidden', message: 'this route needs an admin key', param: null } } });
    }
    expect(await works(alice.key)).toBe(true);
  });

  it('creates keys by project name or id, shows the secret once, and lists prefixes only', async () => {
    const byName = await call(admin, '/v1/admin/keys', 'POST', { project_name: 'erin', name: 'ci' });
    expect(byName.status).toBe(201);
    expect(byName.body).toMatchObject({ name: 'ci', role: 'member', revoked_at: null, expires_at: null, key: expect.stringMatching(/^mk_/) });
    expect(byName.body.key.startsWith(byName.body.prefix)).toBe(true);
    expect(await works(byName.body.key)).toBe(true);

    const byId = await call(admin, '/v1/admin/keys', 'POST', { project_id: alice.project_id, role: 'admin' });
    expect(byId).toMatchObject({ status: 201, body: { project_id: alice.project_id, name: 'default', role: 'admin' } });

    const missing = await call(admin, '/v1/admin/keys', 'POST', { project_id: 'proj_nope' });
    expect(missing).toMatchObject({ status: 404, body: { error: { code: 'not_found', param: 'project_id' } } });
    const both = await call(admin, '/v1/admin/keys', 'POST', { project_id: alice.project_id, project_name: 'alice' });
    expect(both).toMatchObject({ status: 400, body: { error: { code: 'invalid_parameter', param: 'project_id' } } });
    const neither = await call(admin, '/v1/admin/keys', 'POST', { name: 'x' });
    expect(neither).toMatchObject({ status: 400, body: { error: { code: 'invalid_parameter', param: 'project_id' } } });

    const listed = await call(admin, `/v1/admin/keys?project_id=${alice.project_id}`);
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((k: { id: string }) => k.id)).toEqual([byId.body.id, alice.key_id]);
    const text = JSON.stringify((await call(admin, '/v1/admin/keys?limit=100')).body);
    for (const secret of [admin.key, alice.key, byName.body.key, byId.body.key]) expect(text).not.toContain(secret.slice(10));
    const stored = await t.current.db.apiKey.findUniqueOrThrow({ where: { id: byName.body.id } });
    expect(text).not.toContain(stored.secretHash);

    // Pages: newest first, cursor through all of them.
    const first = await call(admin, '/v1/admin/keys?limit=2');
    expect(first.body).toMatchObject({ has_more: true, next_cursor: first.body.data[1].id });
    const second = await call(admin, `/v1/admin/keys?limit=100&after=${first.body.next_cursor}`);
    const all = (await call(admin, '/v1/admin/keys?limit=100')).body.data.map((k: { id: string }) => k.id);
    expect([...first.body.data, ...second.body.data].map((k: { id: string }) => k.id)).toEqual(all);
  });

  it('revokes a key: refused from the very next request, idempotently', async () => {
    const carol = await t.current.createKey('carol');
    expect(await works(carol.key)).toBe(true);
    const revoked = await call(admin, `/v1/admin/keys/${carol.key_id}/revoke`, 'POST');
    expect(revoked).toMatchObject({ status: 200, body: { id: carol.key_id, revoked_at: expect.any(String) } });
    expect(await works(carol.key)).toBe(false);
    const again = await call(admin, `/v1/admin/keys/${carol.key_id}/revoke`, 'POST');
    expect(again.body.revoked_at).toBe(revoked.body.revoked_at);
    expect((await call(admin, '/v1/admin/keys/key_nope/revoke', 'POST')).status).toBe(404);
  });

  it('rotates a key: same project, name and role, a new secret, the old one revoked at once', async () => {
    const dave = await t.current.createKey('dave');
    const rotated = await call(admin, `/v1/admin/keys/${dave.key_id}/rotate`, 'POST');
    expect(rotated.status).toBe(201);
    expect(rotated.body).toMatchObject({ project_id: dave.project_id, name: 'test', role: 'member', revoked_at: null, key: expect.stringMatching(/^mk_/) });
    expect(rotated.body.previous).toMatchObject({ id: dave.key_id, revoked_at: expect.any(String), expires_at: null });
    expect(await works(dave.key)).toBe(false);
    expect(await works(rotated.body.key)).toBe(true);
    // The new key is dave's: it sees dave's (empty) project, not another's.
    expect((await call(rotated.body.key, `/v1/datasets?project_id=${alice.project_id}`)).status).toBe(404);

    const again = await call(admin, `/v1/admin/keys/${dave.key_id}/rotate`, 'POST');
    expect(again).toMatchObject({ status: 409, body: { error: { code: 'key_revoked' } } });
    expect((await call(admin, '/v1/admin/keys/key_nope/rotate', 'POST')).status).toBe(404);
    const bad = await call(admin, `/v1/admin/keys/${rotated.body.id}/rotate`, 'POST', { grace_period_s: -1 });
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'invalid_parameter', param: 'grace_period_s' } } });
  });

  it('rotates with a grace period: both keys work until the old one expires', async () => {
    const frank = await t.current.createKey('frank', { admin: true });
    const rotated = await call(admin, `/v1/admin/keys/${frank.key_id}/rotate`, 'POST', { grace_period_s: 3600 });
    expect(rotated.status).toBe(201);
    expect(rotated.body).toMatchObject({ role: 'admin', previous: { revoked_at: null, expires_at: expect.any(String) } });
    expect(Date.parse(rotated.body.previous.expires_at) - Date.now()).toBeGreaterThan(3500_000);
    expect(await works(frank.key)).toBe(true);
    expect(await works(rotated.body.key)).toBe(true);
    // Rotated once is enough: the replacement is what to rotate next.
    expect((await call(admin, `/v1/admin/keys/${frank.key_id}/rotate`, 'POST')).status).toBe(409);

    // The grace period ends (moved into the past rather than waited for): the old key is refused.
    await t.current.db.apiKey.update({ where: { id: frank.key_id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    // Changed on another connection: heard through the api_keys notification.
    expect(await msUntilRefused(t.current.app, frank.key)).toBeLessThan(1_000);
    expect(await works(rotated.body.key)).toBe(true);
    expect((await call(admin, `/v1/admin/keys/${frank.key_id}/rotate`, 'POST')).status).toBe(409);
  });

  it('of two concurrent rotations of one key, one wins', async () => {
    const gina = await t.current.createKey('gina');
    const results = await Promise.all([0, 3600, 0, 60].map((g) => call(admin, `/v1/admin/keys/${gina.key_id}/rotate`, 'POST', { grace_period_s: g })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409]);
    expect(await t.current.db.apiKey.count({ where: { projectId: gina.project_id } })).toBe(2);
  });

  it('are documented in the OpenAPI document with their schemas', async () => {
    const doc = (await t.current.app.inject({ url: '/docs/json' })).json();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/admin/keys', '/v1/admin/keys/{id}/revoke', '/v1/admin/keys/{id}/rotate']));
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(['ApiKey', 'ApiKeyPage', 'CreateApiKeyRequest', 'CreatedApiKey', 'RotateApiKeyRequest', 'RotatedApiKey']),
    );
    expect(doc.paths['/v1/admin/keys'].post.responses).toHaveProperty('201');
    expect(doc.paths['/v1/jobs'].post.responses).toHaveProperty('429');
    expect(doc.info.description).toMatch(/429 `rate_limited` with `Retry-After`/);
  });
});
