import { API_KEY_CHANGES_CHANNEL, apiKeyUsable } from './api-keys.js';
import { listen, type Listener } from './listen.js';

// Bounds the cache when many distinct keys call; the oldest entries go first.
const MAX_CACHED_KEYS = 10_000;

/** What a cache entry must carry to be checked on every hit. */
export interface UsableKey {
  revokedAt: Date | null;
  expiresAt: Date | null;
}

/**
 * Usable API keys by secret_hash, reused for `ttlMs`, but only while their owner hears of key
 * changes (`forget` on each api_keys notification, `watching(true)` once it LISTENs;
 * `watchApiKeyChanges` wires both): a revoked key is refused as soon as the notification arrives.
 * Unusable keys and failed lookups are not cached. The embedder and the API both check keys with it.
 */
export class ApiKeyCache<K extends UsableKey> {
  private readonly entries = new Map<string, { key: K; until: number }>();
  /** Changes on every invalidation: a lookup that overlapped one is not cached (it may have read the key before the change). */
  private generation = 0;
  private caching = false;

  constructor(private readonly ttlMs: number) {}

  /** The usable key with this secret_hash, from the cache or from `load`; null for an unknown, revoked or expired one. */
  async get(secretHash: string, load: () => Promise<K | null>): Promise<K | null> {
    const now = Date.now();
    const cached = this.entries.get(secretHash);
    if (cached && cached.until > now) return cached.key;
    this.entries.delete(secretHash);
    const generation = this.generation;
    const key = await load();
    if (!key || !apiKeyUsable(key)) return null;
    if (this.caching && generation === this.generation && this.ttlMs > 0) {
      if (this.entries.size >= MAX_CACHED_KEYS) this.entries.delete(this.entries.keys().next().value!);
      // A key retired by a rotation with a grace period is never cached past its expiry.
      const until = Math.min(Date.now() + this.ttlMs, key.expiresAt?.getTime() ?? Infinity);
      this.entries.set(secretHash, { key, until });
    }
    return key;
  }

  /** The key with this secret_hash changed (revoked, rotated, deleted): look it up again next time. */
  forget(secretHash: string): void {
    this.generation++;
    this.entries.delete(secretHash);
  }

  /**
   * Whether key changes are being heard. Either way the cache is dropped: after a lost connection it
   * may hold a key revoked meanwhile; while not watching, every call looks its key up.
   */
  watching(on: boolean): void {
    this.generation++;
    this.entries.clear();
    this.caching = on;
  }
}

/** Keeps `cache` told of key changes (LISTEN on its own connection); caching is off while that connection is down. */
export function watchApiKeyChanges(
  databaseUrl: string,
  cache: Pick<ApiKeyCache<UsableKey>, 'forget' | 'watching'>,
  log: { warn(obj: object, msg: string): void },
): Listener {
  return listen(databaseUrl, API_KEY_CHANGES_CHANNEL, {
    onNotification: (secretHash) => cache.forget(secretHash),
    onConnect: () => cache.watching(true),
    onError: (error) => {
      cache.watching(false);
      log.warn({ err: error }, 'API key change listener lost its connection; keys are looked up on every request until it is back');
    },
  });
}
