// `npm run -s bench:api`: job submissions per second through the API (POST /v1/jobs: auth with its
// revocation check, both rate limits, validation, hyperparameter resolution, the workers' memory
// check, insert of the job and its event, enqueue) against a bare Fastify route
// doing one Postgres insert with the same pool size, in the same run. Prints one JSON object.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '@moco/config';
import { createDb, createTestDatabase } from '@moco/db';
import { createRedis, createTrainingQueue } from '@moco/queue';
import { createObjectStore } from '@moco/storage';
import Fastify from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { ApiEnv, buildApp, createKeyRepository, createKeyService } from '../apps/api/src/index.js';
import { insertDataset } from '../apps/api/src/testing/fixtures.js';

/** Connections of both sides' Postgres pools. */
const POOL_SIZE = 10;
const WARMUP_REQUESTS = 100;
const JOB_BODY = { hyperparameters: { batch_size: 64, K: 256, epochs: 1 }, metadata: { bench: 'api' } };

const usage = `Usage: npm run -s bench:api -- [--concurrency 32] [--duration-s 10] [--max-requests 5000]

Starts the API (in a child process, against a fresh database, a Redis queue prefix of its own and a
local object store) and a bare Fastify route that does one Postgres insert, then sends each side
requests from --concurrency loops until --duration-s seconds or --max-requests requests, after
${WARMUP_REQUESTS} untimed ones. Reports requests/s and p50/p99 latency of both, and their ratio.
`;

interface Servers {
  api: string;
  bare: string;
  key: string;
  datasetId: string;
}

/** The child: both servers over real services; prints their addresses, cleans up on SIGTERM. */
async function serve(): Promise<void> {
  const database = await createTestDatabase();
  const root = await mkdtemp(path.join(os.tmpdir(), 'moco-bench-api-'));
  const prefix = `bench-api-${randomBytes(4).toString('hex')}`;
  // Limits counted in Redis as in production, but too high to refuse any of the benchmark's requests.
  const unlimited = String(1e9);
  const config = loadConfig(ApiEnv, {
    DATABASE_URL: database.url,
    QUEUE_PREFIX: prefix,
    STORAGE_ROOT: root,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_MAX: unlimited,
    RATE_LIMIT_EXPENSIVE_MAX: unlimited,
    // A fleet with a memory limit, so that each job's memory estimate is checked (the benchmark's jobs fit).
    WORKER_FLEET_BACKEND: 'wasm',
  });
  const logger = pino({ level: 'warn' });
  const db = createDb(database.url, { maxConnections: POOL_SIZE });
  const redis = createRedis(config.REDIS_URL);
  const queue = createTrainingQueue(redis, prefix);
  const app = await buildApp({ db, queue, config, logger, redis, store: createObjectStore({ kind: 'local', root }) });
  const created = await createKeyService(createKeyRepository(db), logger).createKey({ projectName: 'bench', role: 'member', name: 'bench' });
  const dataset = await insertDataset(db, created.project_id);

  const pool = new pg.Pool({ connectionString: database.url, max: POOL_SIZE });
  await pool.query('CREATE TABLE bench_bare (id text PRIMARY KEY, body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())');
  const bare = Fastify();
  bare.post('/bare', async (request, reply) => {
    await pool.query('INSERT INTO bench_bare (id, body) VALUES ($1, $2)', [randomBytes(16).toString('hex'), request.body]);
    return reply.code(201).send({ ok: true });
  });

  const servers: Servers = {
    api: `${await app.listen({ host: '127.0.0.1', port: 0 })}/v1/jobs`,
    bare: `${await bare.listen({ host: '127.0.0.1', port: 0 })}/bare`,
    key: created.key,
    datasetId: dataset.id,
  };
  process.stdout.write(`${JSON.stringify(servers)}\n`);
  process.once('SIGTERM', async () => {
    await Promise.all([app.close(), bare.close()]);
    await queue.obliterate({ force: true });
    await queue.close();
    redis.disconnect();
    await Promise.all([db.$disconnect(), pool.end()]);
    await database.drop();
    await rm(root, { recursive: true, force: true });
    process.exit(0);
  });
}

interface Side {
  requests: number;
  errors: number;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
}

const round = (x: number, digits = 1) => Number(x.toFixed(digits));

/** `concurrency` loops sending requests until the time or request budget is spent. */
async function load(url: string, init: RequestInit, o: { concurrency: number; durationS: number; maxRequests: number }): Promise<Side> {
  const send = async () => {
    const res = await fetch(url, init);
    await res.arrayBuffer();
    return res.status === 201;
  };
  let warm = 0;
  await Promise.all(Array.from({ length: o.concurrency }, async () => {
    while (warm++ < WARMUP_REQUESTS) await send();
  }));
  const latencies: number[] = [];
  let started = 0;
  let errors = 0;
  const t0 = performance.now();
  const deadline = t0 + o.durationS * 1000;
  await Promise.all(Array.from({ length: o.concurrency }, async () => {
    while (started < o.maxRequests && performance.now() < deadline) {
      started++;
      const s = performance.now();
      const ok = await send().catch(() => false);
      latencies.push(performance.now() - s);
      if (!ok) errors++;
    }
  }));
  const elapsedS = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { requests: latencies.length, errors, requests_per_s: round(latencies.length / elapsedS), p50_ms: round(at(0.5), 2), p99_ms: round(at(0.99), 2) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      concurrency: { type: 'string', default: '32' },
      'duration-s': { type: 'string', default: '10' },
      'max-requests': { type: 'string', default: '5000' },
      help: { type: 'boolean', default: false },
      server: { type: 'boolean', default: false },
    },
  });
  if (values.server) return serve();
  if (values.help) return void process.stdout.write(usage);
  const o = { concurrency: Number(values.concurrency), durationS: Number(values['duration-s']), maxRequests: Number(values['max-requests']) };
  if (![o.concurrency, o.maxRequests].every((n) => Number.isInteger(n) && n > 0) || !(o.durationS > 0)) {
    throw new Error('invalid options (see --help)');
  }

  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--server'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const firstLine = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the server process exited with code ${code}`)));
  });
  const servers = JSON.parse(firstLine) as Servers;
  try {
    const loadStart = os.loadavg();
    const body = JSON.stringify({ ...JOB_BODY, dataset_id: servers.datasetId });
    const headers = { 'content-type': 'application/json' };
    const bare = await load(servers.bare, { method: 'POST', headers, body }, o);
    const api = await load(servers.api, { method: 'POST', headers: { ...headers, authorization: `Bearer ${servers.key}` }, body }, o);
    const report = {
      bench: 'api',
      what: 'POST /v1/jobs (auth and revocation, rate limits, validation, memory check, job + event insert, enqueue) vs a bare route with one Postgres insert',
      concurrency: o.concurrency,
      pool_size: POOL_SIZE,
      api,
      bare,
      ratio: round(api.requests_per_s / bare.requests_per_s, 3),
      ratio_is: 'api.requests_per_s / bare.requests_per_s',
      machine: {
        cpus: os.cpus().length,
        cpu_model: os.cpus()[0]?.model ?? 'unknown',
        node: process.version,
        load_avg_start: loadStart.map((x) => round(x, 2)),
        load_avg_end: os.loadavg().map((x) => round(x, 2)),
      },
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
