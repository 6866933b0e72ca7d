import { newId, type ApiKeyModel as ApiKey, type Db, type ProjectModel as Project } from '@moco/db';

export type KeyRepository = ReturnType<typeof createKeyRepository>;

export function createKeyRepository(db: Db) {
  return {
    findBySecretHash(secretHash: string): Promise<ApiKey | null> {
      return db.apiKey.findUnique({ where: { secretHash } });
    },

    async touch(keyId: string, at: Date): Promise<void> {
      await db.apiKey.update({ where: { id: keyId }, data: { lastUsedAt: at } });
    },

    /** The oldest project of that name, created when there is none. */
    async findOrCreateProject(name: string): Promise<Project> {
      const found = await db.project.findFirst({ where: { name }, orderBy: { id: 'asc' } });
      return found ?? db.project.create({ data: { id: newId('proj'), name } });
    },

    insertKey(key: { projectId: string; name: string; role: string; secretHash: string; prefix: string }): Promise<ApiKey> {
      return db.apiKey.create({ data: { id: newId('key'), ...key } });
    },
  };
}
