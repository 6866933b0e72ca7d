import { status, type Metadata } from '@grpc/grpc-js';
import { ApiKeyCache, hashApiKey, type Db } from '@moco/db';
import { EmbedError } from './errors.js';

type KeyRow = { projectId: string; revokedAt: Date | null; expiresAt: Date | null };

/**
 * Maps `authorization: Bearer <key>` metadata to the key's project: sha256 (hex) of the key is
 * api_keys.secret_hash, and the key must be usable. Lookups are cached (`cache`, which its owner
 * keeps told of key changes), so a revoked key is refused as soon as the notification arrives.
 */
export class ApiKeyAuth {
  constructor(
    private readonly db: Db,
    readonly cache: ApiKeyCache<KeyRow>,
  ) {}

  async projectOf(metadata: Metadata): Promise<string> {
    const header = metadata.get('authorization')[0];
    const key = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header)?.[1] : undefined;
    if (!key) throw new EmbedError(status.UNAUTHENTICATED, 'missing "authorization: Bearer <api key>" metadata');
    const hash = hashApiKey(key);
    const row = await this.cache.get(hash, () =>
      this.db.apiKey.findUnique({ where: { secretHash: hash }, select: { projectId: true, revokedAt: true, expiresAt: true } }),
    );
    if (!row) throw new EmbedError(status.UNAUTHENTICATED, 'invalid, revoked or expired API key');
    return row.projectId;
  }
}
