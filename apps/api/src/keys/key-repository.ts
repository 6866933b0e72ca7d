import { newId, type ApiKeyModel as ApiKey, type Db, type ProjectModel as Project } from '@moco/db';

export type KeyRepository = ReturnType<typeof createKeyRepository>;

/** What a new key row needs; the secret itself is never stored. */
export interface NewKey {
  projectId: string;
  name: string;
  role: string;
  secretHash: string;
  prefix: string;
}

export function createKeyRepository(db: Db) {
  return {
    findBySecretHash(secretHash: string): Promise<ApiKey | null> {
      return db.apiKey.findUnique({ where: { secretHash } });
    },

    findById(id: string): Promise<ApiKey | null> {
      return db.apiKey.findUnique({ where: { id } });
    },

    /** Newest first; `take` rows with id below `after`. */
    list(projectId: string | undefined, after: string | undefined, take: number): Promise<ApiKey[]> {
      return db.apiKey.findMany({
        where: { ...(projectId !== undefined && { projectId }), ...(after !== undefined && { id: { lt: after } }) },
        orderBy: { id: 'desc' },
        take,
      });
    },

    async touch(keyId: string, at: Date): Promise<void> {
      await db.apiKey.update({ where: { id: keyId }, data: { lastUsedAt: at } });
    },

    findProject(id: string): Promise<Project | null> {
      return db.project.findUnique({ where: { id } });
    },

    /** The oldest project of that name, created when there is none. */
    async findOrCreateProject(name: string): Promise<Project> {
      const found = await db.project.findFirst({ where: { name }, orderBy: { id: 'asc' } });
      return found ?? db.project.create({ data: { id: newId('proj'), name } });
    },

    insertKey(key: NewKey): Promise<ApiKey> {
      return db.apiKey.create({ data: { id: newId('key'), ...key } });
    },

    /** Sets revoked_at unless it is set already (the first revocation's time stays); false: no such key. */
    async revoke(id: string, at: Date): Promise<boolean> {
      await db.apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: at } });
      return (await db.apiKey.count({ where: { id } })) > 0;
    },

    /**
     * Inserts the replacement and retires `oldId` in one transaction: revoked at `at`, or expiring at
     * `expiresAt`. Null when the old key is revoked or already rotated (it has an expiry): nothing is
     * inserted then, so of concurrent rotations one wins.
     */
    rotate(oldId: string, replacement: NewKey, at: Date, expiresAt: Date | null): Promise<{ created: ApiKey; previous: ApiKey } | null> {
      return db.$transaction(async (tx) => {
        const retired = await tx.apiKey.updateMany({
          where: { id: oldId, revokedAt: null, expiresAt: null },
          data: expiresAt ? { expiresAt } : { revokedAt: at },
        });
        if (retired.count === 0) return null;
        const created = await tx.apiKey.create({ data: { id: newId('key'), ...replacement } });
        return { created, previous: await tx.apiKey.findUniqueOrThrow({ where: { id: oldId } }) };
      });
    },
  };
}
