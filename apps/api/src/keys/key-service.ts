import { randomBytes } from 'node:crypto';
import type { ApiKey, CreatedApiKey, Page, RotatedApiKey } from '@moco/contracts';
import { ApiKeyCache, hashApiKey, type ApiKeyModel } from '@moco/db';
import type { FastifyBaseLogger } from 'fastify';
import { toPage } from '../shared/pagination.js';
import { ApiError, notFound } from '../shared/api-error.js';
import type { Principal } from '../shared/scope.js';
import type { KeyRepository, NewKey } from './key-repository.js';

export const KEY_PREFIX = 'mk_';
// last_used_at is for operators ("is this key still in use?"): minute precision spares a write per request.
const TOUCH_INTERVAL_MS = 60_000;

/** What `keys:create` prints (and tests get): the key with its project's name. */
export interface CreatedKey {
  project_id: string;
  project_name: string;
  key_id: string;
  name: string;
  role: Principal['role'];
  /** Shown once: only its hash is stored. */
  key: string;
}

type Role = Principal['role'];

const roleOf = (role: string): Role => (role === 'admin' ? 'admin' : 'member');

/** A new secret and the row that stands for it. */
function newSecret(key: { projectId: string; name: string; role: Role }): { secret: string; row: NewKey } {
  const secret = KEY_PREFIX + randomBytes(32).toString('base64url');
  return { secret, row: { ...key, secretHash: hashApiKey(secret), prefix: secret.slice(0, KEY_PREFIX.length + 6) } };
}

/** A key as listed: never its hash. */
export function toApiKey(row: ApiKeyModel): ApiKey {
  return {
    id: row.id,
    project_id: row.projectId,
    name: row.name,
    role: roleOf(row.role),
    prefix: row.prefix,
    created_at: row.createdAt.toISOString(),
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
    expires_at: row.expiresAt?.toISOString() ?? null,
  };
}

export type KeyService = ReturnType<typeof createKeyService>;

/**
 * `cache`: lookups reused while its owner keeps it told of key changes (see app.ts); without one
 * (scripts, tests of other things) each verification reads the key.
 */
export function createKeyService(repo: KeyRepository, log: FastifyBaseLogger, cache = new ApiKeyCache<ApiKeyModel>(0)) {
  async function issue(key: { projectId: string; name: string; role: Role }): Promise<{ row: ApiKeyModel; secret: string }> {
    const { secret, row } = newSecret(key);
    return { row: await repo.insertKey(row), secret };
  }

  async function existing(id: string): Promise<ApiKeyModel> {
    const row = await repo.findById(id);
    if (!row) throw notFound('API key', id);
    return row;
  }

  return {
    /** A key of the project named so, which is created when there is none. */
    async createKey(opts: { projectName: string; role: Role; name: string }): Promise<CreatedKey> {
      const project = await repo.findOrCreateProject(opts.projectName);
      const { row, secret } = await issue({ projectId: project.id, name: opts.name, role: opts.role });
      return { project_id: project.id, project_name: project.name, key_id: row.id, name: row.name, role: opts.role, key: secret };
    },

    /** POST /v1/admin/keys: a key of an existing project (by id), or of one by name (created when missing). */
    async create(req: { project_id?: string; project_name?: string; name: string; role: Role }): Promise<CreatedApiKey> {
      let projectId: string;
      if (req.project_id !== undefined) {
        if (!(await repo.findProject(req.project_id))) throw new ApiError(404, 'not_found', `no project ${req.project_id}`, 'project_id');
        projectId = req.project_id;
      } else {
        projectId = (await repo.findOrCreateProject(req.project_name!)).id;
      }
      const { row, secret } = await issue({ projectId, name: req.name, role: req.role });
      return { ...toApiKey(row), key: secret };
    },

    async list(query: { project_id?: string; limit: number; after?: string }): Promise<Page<ApiKey>> {
      const rows = await repo.list(query.project_id, query.after, query.limit + 1);
      return toPage(rows, query.limit, (r) => r.id, toApiKey);
    },

    /**
     * Refused from this process's next request on, and by other replicas (and the embedder) once the
     * api_keys trigger's notification reaches them; revoking twice keeps the first time.
     */
    async revoke(id: string): Promise<ApiKey> {
      if (!(await repo.revoke(id, new Date()))) throw notFound('API key', id);
      const row = await existing(id);
      cache.forget(row.secretHash);
      return toApiKey(row);
    },

    /** A new secret for the same project, name and role; the old key is revoked, or expires after the grace period. */
    async rotate(id: string, gracePeriodS: number): Promise<RotatedApiKey> {
      const old = await existing(id);
      const now = new Date();
      const { secret, row } = newSecret({ projectId: old.projectId, name: old.name, role: roleOf(old.role) });
      const rotated = await repo.rotate(id, row, now, gracePeriodS > 0 ? new Date(now.getTime() + gracePeriodS * 1000) : null);
      if (!rotated) throw new ApiError(409, 'key_revoked', `API key ${id} is revoked or was rotated already: rotate its replacement`);
      cache.forget(rotated.previous.secretHash);
      return { ...toApiKey(rotated.created), key: secret, previous: toApiKey(rotated.previous) };
    },

    /** The caller behind a key, or null for an unknown, revoked or expired one. */
    async verify(secret: string): Promise<Principal | null> {
      if (!secret.startsWith(KEY_PREFIX)) return null;
      const hash = hashApiKey(secret);
      const key = await cache.get(hash, () => repo.findBySecretHash(hash));
      if (!key) return null;
      const now = new Date();
      if (!key.lastUsedAt || now.getTime() - key.lastUsedAt.getTime() > TOUCH_INTERVAL_MS) {
        // Noted on the (possibly cached) row too, so the next minute's requests don't write again.
        key.lastUsedAt = now;
        repo.touch(key.id, now).catch((err: unknown) => log.warn({ err, keyId: key.id }, 'could not record key use'));
      }
      return { keyId: key.id, projectId: key.projectId, role: roleOf(key.role) };
    },
  };
}
