// Reads the operations of the API's own OpenAPI document, and where hostile values can go in each.

export interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  $ref?: string;
  anyOf?: Schema[];
  allOf?: Schema[];
}

interface DocumentedOperation {
  parameters?: { in: string; name: string }[];
  requestBody?: { content: Record<string, { schema: Schema }> };
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, DocumentedOperation>>;
  components?: { schemas?: Record<string, Schema> };
}

/** Somewhere a request carries a value: a path, query or header parameter, a body field (dotted path; [] is the whole body) or the raw body. */
export type Location =
  | { kind: 'path' | 'query' | 'header'; name: string }
  | { kind: 'body'; path: string[] }
  | { kind: 'raw-body' }
  | { kind: 'method' };

export interface Operation {
  method: string;
  /** As in the document: `/v1/jobs/{id}`. */
  path: string;
  locations: Location[];
}

/** Headers every operation can be attacked through, besides those it declares. */
const COMMON_HEADERS = ['authorization', 'content-type', 'accept', 'x-request-id', 'idempotency-key', 'last-event-id'];

/** Served but not in the document (Prometheus, the document itself, the dashboard): attacked the same way. */
const UNDOCUMENTED = ['/metrics', '/docs/json', '/docs/', '/admin/'];

function resolve(doc: OpenApiDocument, schema: Schema): Schema {
  const name = schema.$ref?.replace('#/components/schemas/', '');
  return name === undefined ? schema : resolve(doc, doc.components?.schemas?.[name] ?? {});
}

/** Every field path of a JSON body schema, parents before children. */
function fieldPaths(doc: OpenApiDocument, schema: Schema, prefix: string[] = []): string[][] {
  const s = resolve(doc, schema);
  const variants = [s, ...(s.anyOf ?? []), ...(s.allOf ?? [])].map((v) => resolve(doc, v));
  const paths: string[][] = [];
  for (const v of variants) {
    for (const [key, child] of Object.entries(v.properties ?? {})) {
      paths.push([...prefix, key], ...fieldPaths(doc, child, [...prefix, key]));
    }
  }
  return paths;
}

export function operationsOf(doc: OpenApiDocument): Operation[] {
  const ops: Operation[] = [];
  const undocumented: OpenApiDocument['paths'] = Object.fromEntries(UNDOCUMENTED.map((p) => [p, { get: {} }]));
  const paths = { ...undocumented, ...doc.paths };
  for (const [path, methods] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const declared = (op.parameters ?? []).filter((p) => ['path', 'query', 'header'].includes(p.in));
      const headers = new Set([...COMMON_HEADERS, ...declared.filter((p) => p.in === 'header').map((p) => p.name)]);
      const locations: Location[] = [
        ...declared.filter((p) => p.in !== 'header').map((p) => ({ kind: p.in as 'path' | 'query', name: p.name })),
        // Parameters the operation does not declare (or only describes: the metadata filter) must be handled cleanly too.
        { kind: 'query', name: 'unknown_param' },
        { kind: 'query', name: 'metadata.team' },
        ...[...headers].map((name) => ({ kind: 'header' as const, name })),
        { kind: 'method' },
      ];
      if (method !== 'get') {
        locations.push({ kind: 'raw-body' }, { kind: 'body', path: [] });
        const json = op.requestBody?.content['application/json']?.schema;
        if (json) locations.push(...fieldPaths(doc, json).map((p) => ({ kind: 'body' as const, path: p })));
      }
      ops.push({ method: method.toUpperCase(), path, locations });
    }
  }
  return ops;
}
