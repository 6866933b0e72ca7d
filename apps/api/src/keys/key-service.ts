import { randomBytes } from 'node:crypto';
import { hashApiKey } from '@moco/db';
import type { FastifyBaseLogger } from 'fastify';
import type { Principal } from '../shared/scope.js';
import type { KeyRepository } from './key-repository.js';

export const KEY_PREFIX = 'mk_';
// last_used_at is for operators ("is this key still in use?"): minute precision spares a write per request.
const TOUCH_INTERVAL_MS = 60_000;

export interface CreatedKey {
  project_id: string;
  project_name: string;
  key_id: string;
  name: string;
  role: Principal['role'];
  /** Shown once: only its hash is stored. */
  key: string;
}

export type KeyService = ReturnType<typeof createKeyService>;

export function createKeyService(repo: KeyRepository, log: FastifyBaseLogger) {
  return {
    async createKey(opts: { projectName: string; role: Principal['role']; name: string }): Promise<CreatedKey> {
      const project = await repo.findOrCreateProject(opts.projectName);
      const secret = KEY_PREFIX + randomBytes(32).toString('base64url');
      const row = await repo.insertKey({
        projectId: project.id,
        name: opts.name,
        role: opts.role,
        secretHash: hashApiKey(secret),
        prefix: secret.slice(0, KEY_PREFIX.length + 6),
      });
      return { project_id: project.id, project_name: project.name, key_id: row.id, name: row.name, role: opts.role, key: secret };
    },

    /** The caller behind a key, or null for an unknown or revoked one. */
    async verify(secret: string): Promise<Principal | null> {
      if (!secret.startsWith(KEY_PREFIX)) return null;
      const key = await repo.findBySecretHash(hashApiKey(secret));
      if (!key || key.revokedAt) return null;
      const now = new Date();
      if (!key.lastUsedAt || now.getTime() - key.lastUsedAt.getTime() > TOUCH_INTERVAL_MS) {
        repo.touch(key.id, now).catch((err: unknown) => log.warn({ err, keyId: key.id }, 'could not record key use'));
      }
      return { keyId: key.id, projectId: key.projectId, role: key.role === 'admin' ? 'admin' : 'member' };
    },
  };
}
