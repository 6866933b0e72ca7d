import type { Page } from '@moco/contracts';

/**
 * Turns `limit + 1` rows (the extra one only says whether more exist) into a page whose cursor is
 * the last returned row's key.
 */
export function toPage<Row, Item>(rows: Row[], limit: number, cursorOf: (row: Row) => string, toItem: (row: Row) => Item): Page<Item> {
  const kept = rows.slice(0, limit);
  const hasMore = rows.length > limit;
  const last = kept.at(-1);
  return { data: kept.map(toItem), has_more: hasMore, next_cursor: hasMore && last !== undefined ? cursorOf(last) : null };
}
