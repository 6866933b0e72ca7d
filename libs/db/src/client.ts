import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/client.js';

export type Db = InstanceType<typeof PrismaClient>;

/** A Prisma client over node-postgres (Prisma 7's driver-adapter mode: no query-engine binary). */
export function createDb(databaseUrl: string, opts: { maxConnections?: number } = {}): Db {
  const adapter = new PrismaPg({ connectionString: databaseUrl, max: opts.maxConnections ?? 10 });
  return new PrismaClient({ adapter });
}
