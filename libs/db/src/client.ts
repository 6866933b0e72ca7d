import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from './generated/client.js';

export type Db = InstanceType<typeof PrismaClient>;

const pools = new WeakMap<Db, pg.Pool>();

/**
 * A Prisma client over node-postgres (Prisma 7's driver-adapter mode: no query-engine binary). The
 * pool is the client's ($disconnect ends it); `sqlPool` lends it to hot statements.
 */
export function createDb(databaseUrl: string, opts: { maxConnections?: number } = {}): Db {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: opts.maxConnections ?? 10 });
  const db = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
  pools.set(db, pool);
  return db;
}

/**
 * The node-postgres pool under a client from `createDb`, for the few statements on a hot path
 * where Prisma's own work per query shows (job submission: bench:api). Same connections, no second pool.
 */
export function sqlPool(db: Db): pg.Pool {
  const pool = pools.get(db);
  if (!pool) throw new Error('sqlPool: this client was not made by createDb');
  return pool;
}
