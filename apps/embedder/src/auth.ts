import { status, type Metadata } from '@grpc/grpc-js';
import { apiKeyUsable, hashApiKey, type Db } from '@moco/db';
import { EmbedError } from './errors.js';

// Bounds the cache when many distinct keys call; the oldest entries go first.
const MAX_CACHED_KEYS = 10_000;

/**
 * Maps `authorization: Bearer <key>` metadata to the key's project: sha256 (hex) of the key is
 * api_keys.secret_hash, and the key must not be revoked. Lookups are reused for `cacheMs`, but only
 * while the owner hears of key changes (`forget` on each api_keys notification, `watching(true)` once
 * it LISTENs): a revoked key is refused as soon as the notification arrives. Failures are not cached.
 */
export class ApiKeyAuth {
  private readonly cache = new Map<string, { projectId: string; until: number }>();
  /** Changes on every invalidation: a lookup that overlapped one is not cached (it may have read the key before the change). */
  private generation = 0;
  private caching = false;

  constructor(
    private readonly db: Db,
    private readonly cacheMs: number,
  ) {}

  async projectOf(metadata: Metadata): Promise<string> {
    const header = metadata.get('authorization')[0];
    const key = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header)?.[1] : undefined;
    if (!key) throw new EmbedError(status.UNAUTHENTICATED, 'missing "authorization: Bearer <api key>" metadata');
    const hash = hashApiKey(key);
    const cached = this.cache.get(hash);
    if (cached && cached.until > Date.now()) return cached.projectId;
    this.cache.delete(hash);
    const generation = this.generation;
    const row = await this.db.apiKey.findUnique({ where: { secretHash: hash }, select: { projectId: true, revokedAt: true, expiresAt: true } });
    if (!row || !apiKeyUsable(row)) throw new EmbedError(status.UNAUTHENTICATED, 'invalid, revoked or expired API key');
    if (this.caching && generation === this.generation) {
      if (this.cache.size >= MAX_CACHED_KEYS) this.cache.delete(this.cache.keys().next().value!);
      // A key retired by a rotation with a grace period is never cached past its expiry.
      const until = Math.min(Date.now() + this.cacheMs, row.expiresAt?.getTime() ?? Infinity);
      this.cache.set(hash, { projectId: row.projectId, until });
    }
    return row.projectId;
  }

  /** The key with this secret_hash changed (revoked, rotated, deleted): look it up again next time. */
  forget(secretHash: string): void {
    this.generation++;
    this.cache.delete(secretHash);
  }

  /**
   * Whether key changes are being heard. Either way the cache is dropped: after a lost connection it
   * may hold a key revoked meanwhile; while not watching, every call looks its key up.
   */
  watching(on: boolean): void {
    this.generation++;
    this.cache.clear();
    this.caching = on;
  }
}
