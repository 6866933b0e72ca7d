import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY_CHANGES_CHANNEL, hashApiKey } from './api-keys.js';
import { createDb, type Db } from './client.js';
import { newId } from './ids.js';
import { listen, type Listener } from './listen.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';

describe('api_keys change notifications', () => {
  let tdb: TestDatabase;
  let db: Db;
  let listener: Listener;
  const heard: string[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase();
    db = createDb(tdb.url);
    listener = listen(tdb.url, API_KEY_CHANGES_CHANNEL, { onNotification: (hash) => heard.push(hash) });
    await listener.ready;
  });
  afterAll(async () => {
    await listener?.close();
    await db?.$disconnect();
    await tdb?.drop();
  });

  it("sends a key's secret_hash when it is revoked, rotated or deleted, and not for other changes", async () => {
    const projectId = newId('proj');
    await db.project.create({ data: { id: projectId, name: 'p' } });
    const key = async (secret: string) => {
      const secretHash = hashApiKey(secret);
      await db.apiKey.create({ data: { id: newId('key'), projectId, name: secret, secretHash, prefix: 'sk_' } });
      return { secretHash };
    };
    const [revoked, rotated, deleted, used] = await Promise.all(['a', 'b', 'c', 'd'].map(key));
    await db.apiKey.update({ where: used!, data: { lastUsedAt: new Date(), name: 'renamed' } });
    await db.apiKey.update({ where: revoked!, data: { revokedAt: new Date() } });
    await db.apiKey.update({ where: rotated!, data: { secretHash: hashApiKey('b2') } });
    await db.apiKey.delete({ where: deleted! });
    // A deleted project takes its keys along (cascade): each is announced.
    await db.project.delete({ where: { id: projectId } });
    await expect.poll(() => heard.length).toBe(6);
    expect(heard.slice(0, 3)).toEqual([revoked!.secretHash, rotated!.secretHash, deleted!.secretHash]);
    expect(heard.slice(3).sort()).toEqual([revoked!.secretHash, hashApiKey('b2'), used!.secretHash].sort());
  });
});
