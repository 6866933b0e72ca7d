import { createHash } from 'node:crypto';

/** api_keys.secret_hash of a key: sha256, hex. The API (which issues keys) and the embedder both check with it. */
export function hashApiKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
