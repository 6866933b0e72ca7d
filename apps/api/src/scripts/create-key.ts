// `npm run keys:create -- --project <name> [--admin] [--name <key name>]`: creates the project when
// there is none of that name, and prints the new key as JSON. The key is shown only this once.
import { parseArgs } from 'node:util';
import { databaseEnv, loadConfig } from '@moco/config';
import { createDatabaseIfMissing, createDb, migrate } from '@moco/db';
import { pino } from 'pino';
import { z } from 'zod';
import { createKeyRepository } from '../keys/key-repository.js';
import { createKeyService } from '../keys/key-service.js';

const usage = 'Usage: npm run keys:create -- --project <name> [--admin] [--name <key name>]\n';

const { values } = parseArgs({
  options: {
    project: { type: 'string' },
    admin: { type: 'boolean', default: false },
    name: { type: 'string', default: 'default' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help || !values.project) {
  process.stderr.write(usage);
  process.exit(values.help ? 0 : 2);
}

const { DATABASE_URL } = loadConfig(z.object(databaseEnv));
// Keys are often the first thing made in a new deployment, before the API ever ran.
await createDatabaseIfMissing(DATABASE_URL);
await migrate(DATABASE_URL);
const db = createDb(DATABASE_URL, { maxConnections: 1 });
try {
  const keys = createKeyService(createKeyRepository(db), pino({ level: 'warn' }));
  const created = await keys.createKey({ projectName: values.project, role: values.admin ? 'admin' : 'member', name: values.name });
  process.stdout.write(`${JSON.stringify(created, null, 2)}\n`);
} finally {
  await db.$disconnect();
}
