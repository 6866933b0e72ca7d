import { EVENT_STREAM_EXAMPLE, EXAMPLES } from './openapi-examples.js';

// What the route schemas cannot say by themselves, added to the generated OpenAPI document so that
// client generators get the whole contract: the error answers every operation can give (with the
// one error schema), examples, the SSE media type and the metadata filter.

interface Response {
  description: string;
  content?: Record<string, { schema?: object; example?: unknown }>;
  headers?: Record<string, object>;
}

interface Operation {
  operationId?: string;
  security?: unknown[];
  parameters?: { in: string; name: string }[];
  requestBody?: { content: Record<string, { schema?: object; example?: unknown }> };
  responses: Record<string, Response>;
}

interface Document {
  paths: Record<string, Record<string, Operation>>;
}

/** What each error status means here, and the codes it carries. */
const ERRORS: Record<string, string> = {
  '400': '`invalid_parameter` (`param` names it) or `invalid_request`',
  '401': '`unauthorized`: no API key, or an unknown, expired or revoked one',
  '403': '`forbidden`: the key may not do this (admin routes, `project_id` with a member key)',
  '404': '`not_found`: nothing by that id in the key\'s project',
  '409': '`idempotency_conflict`, `job_finished` or `key_revoked`',
  '413': '`payload_too_large`: the body is over the limit',
  '422': '`invalid_dataset`: the file was read and refused (`param` names the entry); `model_too_large`: the job\'s training step would not fit the workers\' memory',
  '429': '`rate_limited`: wait `Retry-After` seconds',
  '503': '`server_busy`, `embedder_unavailable` or `queue_unavailable`: retry after `Retry-After` when given',
  '504': '`deadline_exceeded`',
};

const SUCCESS: Record<string, string> = { '200': 'OK', '201': 'Created', '202': 'Accepted: the job is cancelling' };

const ERROR_SCHEMA = { $ref: '#/components/schemas/Error' };

const METADATA_FILTER = {
  in: 'query',
  name: 'metadata',
  style: 'deepObject',
  explode: true,
  required: false,
  schema: { type: 'object', additionalProperties: { type: 'string' } },
  description: 'jobs whose metadata has every given key with the given value: `?metadata[team]=vision` (or `?metadata.team=vision`)',
  example: { team: 'vision' },
};

/** Error statuses an operation can answer besides those its route declares. */
function implicitErrors(path: string, op: Operation): string[] {
  const statuses: string[] = [];
  // Every /v1 route checks the key and its rate limits (health probes declare `security: []`).
  if (op.security?.length !== 0) statuses.push('401', '429');
  if (op.parameters?.length || op.requestBody) statuses.push('400');
  // Fastify's body limit answers any route that reads a body.
  if (op.requestBody) statuses.push('413');
  if (path.includes('{id}')) statuses.push('404');
  if (op.parameters?.some((p) => p.name === 'project_id')) statuses.push('403');
  return statuses;
}

// An operation without an operationId or an example is served without them (never a failed start):
// apps/api/src/plugins/openapi-document.test.ts fails on it instead.
function completeOperation(path: string, op: Operation): void {
  const example = EXAMPLES[op.operationId ?? ''];
  for (const status of implicitErrors(path, op)) op.responses[status] ??= { description: '' };
  for (const [status, response] of Object.entries(op.responses)) {
    if (ERRORS[status]) {
      response.description = ERRORS[status];
      response.content = { 'application/json': { schema: ERROR_SCHEMA } };
    } else if (status === '204') {
      delete response.content; // no body
    } else {
      response.description = SUCCESS[status] ?? response.description;
      const json = response.content?.['application/json'];
      if (json && example) json.example = example.response;
    }
    if (status === '429' || status === '503') response.headers = { 'Retry-After': { description: 'seconds', schema: { type: 'integer' } } };
  }
  const body = op.requestBody?.content['application/json'];
  if (body && example?.request !== undefined) body.example = example.request;
}

/** Completes the document generated from the routes (mutating it) and returns it. */
export function completeDocument<T>(document: T): T {
  const doc = document as unknown as Document;
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const op of Object.values(methods)) completeOperation(path, op);
  }
  const events = doc.paths['/v1/jobs/{id}/events']?.get?.responses['200'];
  if (events?.content) {
    events.content['text/event-stream'] = {
      schema: { type: 'string', description: 'Server-Sent Events: `id`, `event` (the event type, or `metrics`), `data` (JSON)' },
      example: EVENT_STREAM_EXAMPLE,
    };
  }
  doc.paths['/v1/jobs']?.get?.parameters?.push(METADATA_FILTER);
  // Downloads answer the file itself, not JSON.
  for (const path of ['/v1/checkpoints/{id}/export', '/v1/datasets/{id}/download']) {
    const ok = doc.paths[path]?.get?.responses['200'];
    if (ok) ok.content = { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } };
  }
  return document;
}
