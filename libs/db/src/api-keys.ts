import { createHash } from 'node:crypto';

/** api_keys.secret_hash of a key: sha256, hex. The API (which issues keys) and the embedder both check with it. */
export function hashApiKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/**
 * Whether a key still opens the API: not revoked, and not past the expiry a rotation with a grace
 * period gave it. Every service that checks keys should ask this, not look at revoked_at alone.
 */
export function apiKeyUsable(key: { revokedAt: Date | null; expiresAt: Date | null }, now = new Date()): boolean {
  return key.revokedAt === null && (key.expiresAt === null || key.expiresAt > now);
}

/**
 * Postgres NOTIFY channel: a trigger on api_keys sends a key's secret_hash when it is revoked, rotated
 * or deleted, so caches of key lookups (the embedder's) drop it at once.
 */
export const API_KEY_CHANGES_CHANNEL = 'moco_api_keys';
