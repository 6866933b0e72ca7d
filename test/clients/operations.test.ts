import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { MocoClient, OPERATIONS } from '@moco/sdk';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestApp } from '../../apps/api/src/testing/test-app.js';

// Every operation of the served OpenAPI document has a method in the TypeScript SDK and in the
// Python client, by each client's table of operationId -> method (libs/sdk/src/operations.ts,
// libs/python-client/moco_client/operations.py).

const PYTHON_CLIENT = path.join(import.meta.dirname, '../../libs/python-client');
const run = promisify(execFile);

/** The Python table, each entry with whether it names a callable of MocoClient. */
const PYTHON_CHECK = `
import functools, json
from moco_client import MocoClient
from moco_client.operations import OPERATIONS
client = MocoClient("http://127.0.0.1:9", "mk_unused")
def callable_at(path):
    try:
        return callable(functools.reduce(getattr, path.split("."), client))
    except AttributeError:
        return False
print(json.dumps({op: callable_at(p) for op, p in OPERATIONS.items()}))
`;

function methodAt(target: unknown, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((at, name) => (at as Record<string, unknown> | undefined)?.[name], target);
}

describe('the clients cover the OpenAPI document', () => {
  const t = useTestApp();
  let operationIds: string[];

  beforeAll(async () => {
    const doc = (await (await fetch(`${t.current.url}/docs/json`)).json()) as { paths: Record<string, Record<string, { operationId: string }>> };
    operationIds = Object.values(doc.paths).flatMap((methods) => Object.values(methods).map((op) => op.operationId));
  });

  it('the TypeScript SDK has a method for every operation', () => {
    const client = new MocoClient({ baseUrl: 'http://127.0.0.1:9', apiKey: 'mk_unused' });
    expect(operationIds.filter((id) => OPERATIONS[id] === undefined), 'operations missing from libs/sdk/src/operations.ts').toEqual([]);
    const broken = Object.entries(OPERATIONS).filter(([, method]) => typeof methodAt(client, method) !== 'function');
    expect(broken, 'entries naming no MocoClient method').toEqual([]);
  });

  it('the Python client has a method for every operation', async () => {
    const { stdout } = await run('/usr/bin/python3', ['-c', PYTHON_CHECK], { cwd: PYTHON_CLIENT, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
    const table = JSON.parse(stdout) as Record<string, boolean>;
    expect(operationIds.filter((id) => table[id] === undefined), 'operations missing from moco_client/operations.py').toEqual([]);
    expect(Object.entries(table).filter(([, ok]) => !ok), 'entries naming no MocoClient method').toEqual([]);
  });
});
