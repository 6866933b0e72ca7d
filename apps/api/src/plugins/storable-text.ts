import type { FastifyInstance } from 'fastify';
import { invalidParameter } from '../shared/api-error.js';

/**
 * Postgres text and jsonb cannot hold NUL, and jsonb refuses an unpaired surrogate (`"\ud800"`):
 * such a string that reaches a query fails there as a 500. So no request string may carry one,
 * whatever route or field it is bound for.
 */
const storable = (s: string) => !s.includes('\u0000') && s.isWellFormed();

const MESSAGE = 'must not contain NUL characters or unpaired UTF-16 surrogates';

/**
 * Parsed JSON, and the dictionaries Fastify's router and query parser build (instances of a class
 * whose prototype has none); not a body stream or buffer.
 */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto: object | null = Object.getPrototypeOf(value);
  return proto === null || Object.getPrototypeOf(proto) === null;
}

/** The dotted path (`hyperparameters.K`, `metadata.team`) of the first unstorable key or string in `value`, if any. */
export function findUnstorable(value: unknown): string | undefined {
  // Iterative: a hostile body may nest deeper than the call stack goes.
  const pending: [unknown, string][] = [[value, '']];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [item, path] = next;
    if (typeof item === 'string') {
      if (!storable(item)) return path;
    } else if (Array.isArray(item)) {
      item.forEach((v, i) => pending.push([v, path ? `${path}.${i}` : String(i)]));
    } else if (isPlainObject(item)) {
      for (const [k, v] of Object.entries(item)) {
        const at = path ? `${path}.${k}` : k;
        if (!storable(k)) return at;
        pending.push([v, at]);
      }
    }
  }
  return undefined;
}

/** Refuses, as a 400 naming the field, any path parameter, query value or JSON body string that Postgres could not store. */
export function refuseUnstorableText(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    for (const part of [request.params, request.query, request.body]) {
      const param = findUnstorable(part);
      if (param !== undefined) throw invalidParameter(param, MESSAGE);
    }
  });
}
