import { randomInt } from 'node:crypto';
import { API_ERROR_CODES, ErrorBody } from '@moco/contracts';
import seedrandom from 'seedrandom';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CreatedKey } from '../../apps/api/src/keys/key-service.js';
import { insertCheckpoint, insertDataset } from '../../apps/api/src/testing/fixtures.js';
import { bearer, useTestApp } from '../../apps/api/src/testing/test-app.js';
import { HOSTILE_BODIES, HOSTILE_HEADER_VALUES, HOSTILE_JSON, HOSTILE_STRINGS, RAW_URL_TOKENS } from './hostile-values.js';
import { operationsOf, type Location, type OpenApiDocument, type Operation } from './openapi-operations.js';
import { drip, pause, rawExchange, type RawResponse } from '../../apps/api/src/testing/raw-http.js';

// Every operation of the served OpenAPI document, attacked through every parameter, header and body
// field, then raw-HTTP oddities over plain sockets. Random but seeded: REST_FAULT_SEED replays a run,
// REST_FAULT_REQUESTS scales it up for a soak.
const SEED = Number(process.env.REST_FAULT_SEED ?? randomInt(2 ** 31));
const REQUESTS = Number(process.env.REST_FAULT_REQUESTS ?? 2_500);
const CONCURRENCY = 8;
const HEADERS_TIMEOUT_MS = 1_500;
const REQUEST_TIMEOUT_MS = 3_000;
/** Node sweeps for timed-out connections every HEADERS_TIMEOUT_MS / 4; a loaded machine adds its own delay. */
const CUT_MARGIN_MS = 5_000;

const t = useTestApp({ API_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS), API_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) });
const rng = seedrandom(String(SEED));
const pick = <T>(items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;
const seedNote = `(replay with REST_FAULT_SEED=${SEED})`;

/** Percent-encodes every byte but the unreserved ones, so the hostile bytes reach the server as written. */
const encodeBytes = (s: string) =>
  [...Buffer.from(s, 'utf8')].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`)).join('');
const urlToken = () => (rng() < 0.7 ? encodeBytes(pick(HOSTILE_STRINGS)) : pick(RAW_URL_TOKENS));

/** Methods sent to paths that do not take them (fetch refuses TRACE and CONNECT). */
const OTHER_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'PROPFIND', 'FOO'];

interface Fixtures {
  member: CreatedKey;
  admin: CreatedKey;
  datasetId: string;
  jobId: string;
  checkpointId: string;
}

/** One request to send: a valid baseline with some of its values replaced. */
interface Attempt {
  op: Operation;
  /** The operation's method, or another one sent to its path. */
  method: string;
  pathParams: Record<string, string>;
  query: [string, string][];
  headers: Record<string, string>;
  body?: unknown;
  rawBody?: { contentType: string | undefined; body: string };
  /** What was replaced, for the failure report. */
  changed: string[];
}

interface Outcome {
  status: number | 'no response';
  text?: string;
  retryAfter?: string | null;
}

function baseline(op: Operation, f: Fixtures, bucket: string): Attempt {
  const id = op.path.startsWith('/v1/datasets') ? f.datasetId : f.jobId;
  const bodies: Record<string, unknown> = {
    'POST /v1/jobs': { dataset_id: f.datasetId, hyperparameters: { epochs: 1, batch_size: 32 }, metadata: { team: 'fuzz' } },
    'POST /v1/models': { checkpoint_id: f.checkpointId, alias: 'fuzz' },
    'POST /v1/embeddings': { images: ['iVBORw0KGgo='] },
    'POST /v1/datasets': { source: `s3://${bucket}/absent.tar` },
  };
  return {
    op,
    method: op.method,
    pathParams: { id },
    query: [],
    headers: bearer(op.path.startsWith('/v1/admin') ? f.admin : f.member),
    body: bodies[`${op.method} ${op.path}`] ?? (op.method === 'GET' ? undefined : {}),
    changed: [],
  };
}

/** Sets `value` at a dotted path of a JSON body, creating objects on the way. */
function setField(body: unknown, path: string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const root = (body !== null && typeof body === 'object' ? { ...body } : {}) as Record<string, unknown>;
  root[path[0]!] = setField(root[path[0]!], path.slice(1), value);
  return root;
}

function mutate(a: Attempt, where: Location): void {
  switch (where.kind) {
    case 'path':
      a.pathParams[where.name] = urlToken();
      a.changed.push(`path ${where.name}=${a.pathParams[where.name]!.slice(0, 80)}`);
      break;
    case 'query': {
      const value = urlToken();
      a.query.push([where.name, value], ...(rng() < 0.1 ? [[where.name, urlToken()] as [string, string]] : []));
      a.changed.push(`query ${where.name}=${value.slice(0, 80)}`);
      break;
    }
    case 'header':
      a.headers[where.name] = pick(HOSTILE_HEADER_VALUES);
      a.changed.push(`header ${where.name}: ${a.headers[where.name]!.slice(0, 80)}`);
      break;
    case 'body': {
      const value = pick(HOSTILE_JSON);
      a.body = setField(a.body, where.path, value);
      a.changed.push(`body ${where.path.join('.') || '(whole)'} = ${JSON.stringify(value)?.slice(0, 80)}`);
      break;
    }
    case 'method':
      a.method = pick(OTHER_METHODS);
      a.changed.push(`method ${a.method}`);
      break;
    case 'raw-body':
      a.rawBody = pick(HOSTILE_BODIES);
      a.changed.push(`raw body (${a.rawBody.contentType}) ${JSON.stringify(a.rawBody.body.slice(0, 60))}`);
      break;
  }
}

async function send(base: string, a: Attempt): Promise<Outcome> {
  const path = a.op.path.replace(/\{(\w+)\}/g, (_, name: string) => a.pathParams[name]!);
  const query = a.query.map(([k, v]) => `${encodeBytes(k)}=${v}`).join('&');
  const headers = { ...a.headers };
  let body: string | Buffer | undefined;
  if (a.method !== 'GET' && a.method !== 'HEAD') {
    if (a.rawBody) {
      // A Buffer body gets no Content-Type from fetch, so "none at all" is possible.
      body = Buffer.from(a.rawBody.body, 'utf8');
      if (a.rawBody.contentType !== undefined) headers['content-type'] = a.rawBody.contentType;
    } else if (a.body !== undefined) {
      body = JSON.stringify(a.body);
      headers['content-type'] ??= 'application/json';
    }
  }
  try {
    const res = await fetch(`${base}${path}${query ? `?${query}` : ''}`, { method: a.method, headers, body, signal: AbortSignal.timeout(30_000) });
    // A live event stream of a running job does not end: its status and headers are the answer.
    if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
      await res.body?.cancel();
      return { status: res.status };
    }
    return { status: res.status, text: await res.text(), retryAfter: res.headers.get('retry-after') };
  } catch {
    // The server may close a connection whose request it refused before reading it all (huge URL or body).
    return { status: 'no response' };
  }
}

const KNOWN_CODES: readonly string[] = API_ERROR_CODES;

/** What is wrong with an error response, if anything: not the one shape, an unknown code, a 429 or 503 server_busy without Retry-After. */
function errorShapeProblem(status: number, text: string | undefined, retryAfter?: string | null): string | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text ?? '');
  } catch {
    return `${status} body is not JSON: ${text?.slice(0, 200)}`;
  }
  const parsed = ErrorBody.safeParse(json);
  if (!parsed.success) return `${status} body is not the error shape: ${text?.slice(0, 200)}`;
  if (!KNOWN_CODES.includes(parsed.data.error.code)) return `${status} unknown error code ${parsed.data.error.code}`;
  if ((status === 429 || parsed.data.error.code === 'server_busy') && !retryAfter) return `${status} without Retry-After`;
  return undefined;
}

/**
 * 503s by design: the test app has no embedder (POST /v1/embeddings: embedder_unavailable), and
 * uploads beyond MAX_CONCURRENT_UPLOADS at once are turned away (POST /v1/datasets: server_busy,
 * whose Retry-After errorShapeProblem checks).
 */
function designed5xx(a: Attempt, o: Outcome): string | undefined {
  if (o.status !== 503) return undefined;
  if (a.op.path === '/v1/embeddings' && o.text?.includes('"embedder_unavailable"')) return '503 no embedder';
  if (a.op.path === '/v1/datasets' && o.text?.includes('"server_busy"')) return '503 busy';
  return undefined;
}

function problemOf(a: Attempt, o: Outcome): string | undefined {
  if (o.status === 'no response') return undefined;
  if (o.status >= 500 && !designed5xx(a, o)) return `${o.status}: ${o.text?.slice(0, 300)}`;
  // A HEAD answer has no body to be in any shape.
  return o.status >= 400 && a.method !== 'HEAD' ? errorShapeProblem(o.status, o.text, o.retryAfter) : undefined;
}

const describeResponse = (r: RawResponse) => `${r.status} ${r.body.slice(0, 200)}`;

describe('REST fault suite', () => {
  let f: Fixtures;
  let ops: Operation[];

  beforeAll(async () => {
    const { db, url, createKey } = t.current;
    const member = await createKey('fuzz');
    const admin = await createKey('fuzz-ops', { admin: true });
    const dataset = await insertDataset(db, member.project_id);
    const created = await fetch(`${url}/v1/jobs`, {
      method: 'POST',
      headers: { ...bearer(member), 'content-type': 'application/json' },
      body: JSON.stringify({ dataset_id: dataset.id, hyperparameters: { epochs: 1, batch_size: 32 } }),
    });
    const job = (await created.json()) as { id: string; project_id: string };
    const checkpointId = await insertCheckpoint(db, job, 10);
    f = { member, admin, datasetId: dataset.id, jobId: job.id, checkpointId };
    ops = operationsOf((await (await fetch(`${url}/docs/json`)).json()) as OpenApiDocument);
  });

  it('answers every hostile request to every operation without a 5xx, errors in the one shape', async () => {
    const { url, s3 } = t.current;
    expect(ops.length).toBeGreaterThanOrEqual(15);
    // First every location of every operation once, then random combinations of one to three.
    const attempts: Attempt[] = [];
    for (const op of ops) {
      for (const where of op.locations) {
        const a = baseline(op, f, s3.bucket);
        mutate(a, where);
        attempts.push(a);
      }
    }
    while (attempts.length < REQUESTS) {
      const op = pick(ops);
      const a = baseline(op, f, s3.bucket);
      const n = 1 + Math.floor(rng() * 3);
      for (let i = 0; i < n; i++) mutate(a, pick(op.locations));
      attempts.push(a);
    }

    const byClass = new Map<string, number>();
    const failures: string[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < attempts.length) {
          const a = attempts[next++]!;
          const o = await send(url, a);
          const cls = o.status === 'no response' ? 'no response' : (designed5xx(a, o) ?? `${String(o.status)[0]}xx`);
          byClass.set(cls, (byClass.get(cls) ?? 0) + 1);
          const problem = problemOf(a, o);
          if (problem && failures.length < 20) failures.push(`${a.method} ${a.op.path} [${a.changed.join(' | ')}] -> ${problem}`);
        }
      }),
    );
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`REST fault suite: ${attempts.length} requests in ${seconds} s, seed ${SEED}:`, Object.fromEntries([...byClass].sort()));
    expect(failures, seedNote).toEqual([]);
    // Poisoned keys were refused, not merged into a prototype of this (the API's) process.
    expect(({} as Record<string, unknown>).polluted, seedNote).toBeUndefined();
    expect(({} as Record<string, unknown>).admin, seedNote).toBeUndefined();
  });

  it('answers malformed HTTP on a raw socket in the error shape and closes', async () => {
    const { url } = t.current;
    const host = 'Host: 127.0.0.1\r\n';
    const bad = [
      'GARBAGE\r\n\r\n',
      'GET\r\n\r\n',
      'GET /healthz HTTP/9.9\r\n\r\n',
      'FOO /healthz HTTP/1.1\r\n' + host + '\r\n',
      'GET /healthz HTTP/1.1\r\n\r\n', // no Host
      `GET /v1/jobs/${'a'.repeat(200)} HTTP/1.1\r\n${host}\r\n`, // a path parameter over maxParamLength
      `GET /v1/${'a'.repeat(20_000)} HTTP/1.1\r\n${host}\r\n`, // a URL over the header size limit
      `GET /healthz HTTP/1.1\r\n${host}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      `GET /v1/jobs/%zz HTTP/1.1\r\n${host}\r\n`,
      `GET /v1/jobs/%E0%A4%A HTTP/1.1\r\n${host}\r\n`,
      `GET /v1/jobs/%00 HTTP/1.1\r\n${host}\r\n`,
      `GET /v1/jobs?after=%ED%A0%80 HTTP/1.1\r\n${host}\r\n`,
      `GET /healthz HTTP/1.1\r\n${host}X-Nul: a\u0000b\r\n\r\n`,
      `GET /healthz HTTP/1.1\r\n${host}X-Ctl: a\u0001b\r\n\r\n`,
      `GET /healthz HTTP/1.1\r\n${host}No colon here\r\n\r\n`,
      `GET /healthz HTTP/1.1\r\n${host}X-Fold: a\r\n  folded\r\n\r\n`,
      `GET /healthz HTTP/1.1\r\n${host}Bad Name: x\r\n\r\n`,
      `POST /v1/jobs HTTP/1.1\r\n${host}Content-Length: 5\r\nContent-Length: 6\r\n\r\n{}{}{}`,
      `POST /v1/jobs HTTP/1.1\r\n${host}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
      `POST /v1/jobs HTTP/1.1\r\n${host}Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      `POST /v1/jobs HTTP/1.1\r\n${host}Transfer-Encoding: gzip, chunked, identity\r\n\r\n0\r\n\r\n`,
      `POST /v1/jobs HTTP/1.1\r\n${host}Content-Length: -1\r\n\r\n`,
      `POST /v1/jobs HTTP/1.1\r\n${host}Content-Length: 99999999999999999999\r\n\r\n`,
      `GET http://evil.example/healthz HTTP/1.1\r\n${host}\r\n`,
      `OPTIONS * HTTP/1.1\r\n${host}\r\n`,
      `GET /healthz HTTP/1.1\r\n${host}Expect: 100-continue\r\n\r\n`,
      `POST /v1/jobs HTTP/1.1\r\n${host}Expect: teapot\r\nContent-Length: 2\r\n\r\n{}`,
      `\r\n\r\n\r\nGET /healthz HTTP/1.1\r\n${host}\r\n`,
      `GET /healthz HTTP/1.0\r\n\r\n`,
    ];
    const failures: string[] = [];
    const exchanges = await Promise.all(bad.map((text) => rawExchange(url, (s) => void s.write(text, 'latin1'), 4_000)));
    exchanges.forEach((ex, i) => {
      const request = JSON.stringify(bad[i]!.slice(0, 80));
      for (const r of ex.responses) {
        const problem = r.status >= 500 ? describeResponse(r) : r.status >= 400 ? errorShapeProblem(r.status, r.body) : undefined;
        if (problem) failures.push(`${request} -> ${problem}`);
      }
      if (ex.responses.length === 0 && !ex.closedByServer) failures.push(`${request} -> neither answered nor closed in 4 s`);
    });
    expect(failures).toEqual([]);
  });

  it('answers pipelined requests in order on one connection', async () => {
    const { url, app } = t.current;
    const req = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
    const ex = await rawExchange(url, (s) => void s.write(req('/healthz') + req('/v1/jobs/%00') + req('/nope') + req('/healthz') + 'GET /x HTTP/1.1\r\nConnection: close\r\nHost: a\r\n\r\n'), 20_000);
    expect(ex.responses.map((r) => r.status)).toEqual([200, 401, 404, 200, 404]);
    for (const r of ex.responses.slice(1, 3)) expect(errorShapeProblem(r.status, r.body)).toBeUndefined();
    expect(app.server.listening).toBe(true);
  });

  it('cuts slow and truncated requests with the header and request timeouts', async () => {
    const { url } = t.current;
    const slowHeaders = rawExchange(url, (s) => drip(s, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(1_000)}\r\n\r\n`, 200), 30_000);
    const slowBody = rawExchange(
      url,
      async (s) => {
        s.write('POST /v1/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n');
        await drip(s, 'x'.repeat(1_000), 200);
      },
      30_000,
    );
    const stalledBody = rawExchange(
      url,
      (s) => void s.write('POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"dataset'),
      30_000,
    );
    const halfClosed = rawExchange(
      url,
      async (s) => {
        s.write('POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"dataset');
        await pause(50);
        s.end();
      },
      30_000,
    );
    const [headers, body, stalled, half] = await Promise.all([slowHeaders, slowBody, stalledBody, halfClosed]);
    const cut = (ex: { closedAfterMs: number }) => `${Math.round(ex.closedAfterMs)} ms`;
    console.log(`timeouts: slow headers cut after ${cut(headers)} (limit ${HEADERS_TIMEOUT_MS}), slow body ${cut(body)} and stalled body ${cut(stalled)} (limit ${REQUEST_TIMEOUT_MS})`);
    expect(headers.closedByServer && headers.closedAfterMs < HEADERS_TIMEOUT_MS + CUT_MARGIN_MS, `slow headers cut after ${headers.closedAfterMs} ms`).toBe(true);
    for (const ex of [body, stalled]) {
      expect(ex.closedByServer && ex.closedAfterMs < REQUEST_TIMEOUT_MS + CUT_MARGIN_MS, `slow body cut after ${ex.closedAfterMs} ms`).toBe(true);
    }
    expect(half.closedByServer).toBe(true);
    for (const r of [headers, body, stalled, half].flatMap((ex) => ex.responses)) {
      expect(r.status, describeResponse(r)).toBeLessThan(500);
      if (r.status >= 400) expect(errorShapeProblem(r.status, r.body), describeResponse(r)).toBeUndefined();
    }
  });

  it('is healthy afterwards', async () => {
    const { url } = t.current;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const res = await fetch(`${url}/v1/jobs/${f.jobId}`, { headers: bearer(f.member) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }).id).toBe(f.jobId);
  });
});
