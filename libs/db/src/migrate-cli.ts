// `npm run db:migrate`: creates the database if needed and applies pending migrations.
import { z } from 'zod';
import { databaseEnv, loadConfig } from '@moco/config';
import { createDatabaseIfMissing, migrate } from './migrate.js';

const { DATABASE_URL } = loadConfig(z.object(databaseEnv));
if (await createDatabaseIfMissing(DATABASE_URL)) console.log('created database');
const applied = await migrate(DATABASE_URL);
console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
