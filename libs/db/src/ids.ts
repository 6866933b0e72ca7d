import { randomBytes } from 'node:crypto';

export type IdPrefix = 'proj' | 'key' | 'ds' | 'job' | 'ckpt';

/**
 * `<prefix>_<12 hex ms timestamp><20 hex random>`: ids sort by creation time, so cursor pagination
 * can order by id alone, and the prefix tells a reader what kind of object an id names.
 */
export function newId(prefix: IdPrefix, now = Date.now()): string {
  return `${prefix}_${now.toString(16).padStart(12, '0')}${randomBytes(10).toString('hex')}`;
}

export function hasPrefix(id: string, prefix: IdPrefix): boolean {
  return new RegExp(`^${prefix}_[0-9a-f]{32}$`).test(id);
}
