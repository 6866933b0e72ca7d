import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { get_dmmf } from '@prisma/prisma-schema-wasm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './test-database.js';

// Proves prisma/schema.prisma (what the client is generated from) and prisma/migrations (what the
// database is built from) describe the same tables, since migrations are written by hand here.

interface DmmfField {
  name: string;
  dbName?: string | null;
  kind: string;
  type: string;
  isRequired: boolean;
  isList: boolean;
  hasDefaultValue: boolean;
  nativeType?: [string, string[]] | null;
  relationFromFields?: string[];
  relationToFields?: string[];
  relationOnDelete?: string;
}
interface DmmfModel { name: string; dbName: string | null; fields: DmmfField[] }
interface DmmfIndex { model: string; type: 'id' | 'unique' | 'normal' | 'fulltext'; fields: { name: string }[] }

const SCALAR_TYPES: Record<string, string> = {
  String: 'text',
  Int: 'integer',
  BigInt: 'bigint',
  Float: 'double precision',
  Boolean: 'boolean',
  Json: 'jsonb',
  Bytes: 'bytea',
  DateTime: 'timestamp(3) without time zone',
};
const NATIVE_TYPES: Record<string, string> = { Timestamptz: 'timestamp(3) with time zone' };

async function loadDmmf(): Promise<{ models: DmmfModel[]; indexes: DmmfIndex[] }> {
  const schema = await readFile(fileURLToPath(new URL('../../../prisma/schema.prisma', import.meta.url)), 'utf8');
  return JSON.parse(get_dmmf(JSON.stringify({ prismaSchema: schema }))).datamodel;
}

function expectedSchema(models: DmmfModel[], indexes: DmmfIndex[]) {
  const byName = new Map(models.map((m) => [m.name, m]));
  const table = (m: DmmfModel) => m.dbName ?? m.name;
  const column = (m: DmmfModel, field: string) => {
    const f = m.fields.find((x) => x.name === field)!;
    return f.dbName ?? f.name;
  };
  const columns: string[] = [];
  const keys: string[] = [];
  const foreignKeys: string[] = [];
  for (const m of models) {
    for (const f of m.fields) {
      if (f.kind === 'scalar') {
        const type = f.nativeType ? NATIVE_TYPES[f.nativeType[0]] : SCALAR_TYPES[f.type];
        columns.push(`${table(m)}.${f.dbName ?? f.name} ${type} ${f.isRequired ? 'not null' : 'null'} ${f.hasDefaultValue ? 'default' : 'no default'}`);
      }
      if (f.kind === 'object' && f.relationFromFields?.length) {
        const target = byName.get(f.type)!;
        const from = f.relationFromFields.map((c) => column(m, c)).join(',');
        const to = f.relationToFields!.map((c) => column(target, c)).join(',');
        const onDelete = (f.relationOnDelete ?? (f.isRequired ? 'Restrict' : 'SetNull')).toLowerCase();
        foreignKeys.push(`${table(m)}(${from}) -> ${table(target)}(${to}) on delete ${onDelete}`);
      }
    }
  }
  for (const ix of indexes) {
    const m = byName.get(ix.model)!;
    const kind = ix.type === 'id' ? 'primary' : ix.type === 'unique' ? 'unique' : 'index';
    keys.push(`${table(m)} ${kind} (${ix.fields.map((f) => column(m, f.name)).join(',')})`);
  }
  return { tables: models.map(table).sort(), columns: columns.sort(), keys: keys.sort(), foreignKeys: foreignKeys.sort() };
}

async function actualSchema(url: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const q = async (sql: string) => (await c.query(sql)).rows.map((r) => r.line as string).sort();
    const tables = await q(`SELECT table_name AS line FROM information_schema.tables
      WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'`);
    const columns = await q(`SELECT a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
        || CASE WHEN a.attnotnull THEN ' not null' ELSE ' null' END
        || CASE WHEN a.atthasdef THEN ' default' ELSE ' no default' END AS line
      FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = 'public' AND t.relkind = 'r' AND t.relname <> '_prisma_migrations' AND a.attnum > 0 AND NOT a.attisdropped`);
    const keys = await q(`SELECT t.relname || ' ' ||
          CASE WHEN i.indisprimary THEN 'primary' WHEN i.indisunique THEN 'unique' ELSE 'index' END || ' (' ||
          (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum) || ')' AS line
      FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = 'public' AND t.relname <> '_prisma_migrations'`);
    const foreignKeys = await q(`SELECT conrelid::regclass || '(' ||
          (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(conkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = conrelid AND a.attnum = k.attnum) || ') -> ' ||
          confrelid::regclass || '(' ||
          (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(confkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = confrelid AND a.attnum = k.attnum) || ') on delete ' ||
          CASE confdeltype WHEN 'c' THEN 'cascade' WHEN 'r' THEN 'restrict' WHEN 'n' THEN 'setnull'
            WHEN 'a' THEN 'noaction' WHEN 'd' THEN 'setdefault' END AS line
      FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace`);
    return { tables, columns, keys, foreignKeys };
  } finally {
    await c.end();
  }
}

describe('prisma schema and SQL migrations', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('describe the same tables, columns, keys, indexes and foreign keys', async () => {
    const { models, indexes } = await loadDmmf();
    const expected = expectedSchema(models, indexes);
    const actual = await actualSchema(db.url);
    expect(actual.tables).toEqual(expected.tables);
    expect(actual.columns).toEqual(expected.columns);
    expect(actual.keys).toEqual(expected.keys);
    expect(actual.foreignKeys).toEqual(expected.foreignKeys);
  });
});
