// API keys from the command line (`npm run keys -- <command>`), straight against Postgres: the way
// to make the first admin key, and to manage keys without one. Prints JSON; secrets are shown once.
//   create --project <name> [--admin] [--name <key name>]   (the project is created when there is none)
//   list [--project-id <id>]                                 (prefixes only)
//   revoke <key id>
//   rotate <key id> [--grace <seconds>]                      (the old key works that much longer)
import { parseArgs } from 'node:util';
import { ListApiKeysQuery, RotateApiKeyRequest, type ApiKey } from '@moco/contracts';
import { databaseEnv, loadConfig } from '@moco/config';
import { createDatabaseIfMissing, createDb, migrate } from '@moco/db';
import { pino } from 'pino';
import { z } from 'zod';
import { createKeyRepository } from '../keys/key-repository.js';
import { createKeyService, type KeyService } from '../keys/key-service.js';
import { ApiError } from '../shared/api-error.js';

const usage = `Usage: npm run keys -- <command>   (or npm run keys:<command> -- ...)
  create --project <name> [--admin] [--name <key name>]
  list [--project-id <id>]
  revoke <key id>
  rotate <key id> [--grace <seconds>]
`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    project: { type: 'string' },
    'project-id': { type: 'string' },
    admin: { type: 'boolean', default: false },
    name: { type: 'string', default: 'default' },
    grace: { type: 'string', default: '0' },
    help: { type: 'boolean', default: false },
  },
});
const [command, keyId] = positionals;

function fail(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

async function allKeys(keys: KeyService, projectId: string | undefined): Promise<ApiKey[]> {
  const found: ApiKey[] = [];
  let after: string | undefined;
  do {
    const page = await keys.list(ListApiKeysQuery.parse({ project_id: projectId, limit: 100, after }));
    found.push(...page.data);
    after = page.next_cursor ?? undefined;
  } while (after);
  return found;
}

const commands: Record<string, (keys: KeyService) => Promise<unknown>> = {
  create: (keys) => {
    if (!values.project) fail(usage);
    return keys.createKey({ projectName: values.project, role: values.admin ? 'admin' : 'member', name: values.name });
  },
  list: (keys) => allKeys(keys, values['project-id']),
  revoke: (keys) => keys.revoke(keyId ?? fail(usage)),
  rotate: (keys) => {
    const body = RotateApiKeyRequest.safeParse({ grace_period_s: Number(values.grace) });
    if (!body.success) fail(`--grace: ${z.prettifyError(body.error)}`);
    return keys.rotate(keyId ?? fail(usage), body.data.grace_period_s);
  },
};

if (values.help) fail(usage, 0);
const run = commands[command ?? ''] ?? fail(usage);

const { DATABASE_URL } = loadConfig(z.object(databaseEnv));
// Keys are often the first thing made in a new deployment, before the API ever ran.
await createDatabaseIfMissing(DATABASE_URL);
await migrate(DATABASE_URL);
const db = createDb(DATABASE_URL, { maxConnections: 1 });
try {
  const result = await run(createKeyService(createKeyRepository(db), pino({ level: 'warn' })));
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} catch (err) {
  if (!(err instanceof ApiError)) throw err;
  process.exitCode = 1;
  process.stderr.write(`${err.code}: ${err.message}\n`);
} finally {
  await db.$disconnect();
}
