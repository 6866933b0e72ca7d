import { randomInt } from 'node:crypto';
import { buildApp } from '@moco/api';
import { createRedis } from '@moco/queue';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import seedrandom from 'seedrandom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, startTestApp, type TestApp } from '../../apps/api/src/testing/test-app.js';

// Rate limits under concurrency: random floods from several keys (and from no valid key), spread
// over three replicas on one Redis, in parallel. Whatever the interleaving, each budget lets exactly
// its size through and every request in it sees a different count. Random but seeded:
// RATE_LIMIT_FAULT_SEED replays a run; RATE_LIMIT_FAULT_ROUNDS (default 3) makes it longer.
const SEED = Number(process.env.RATE_LIMIT_FAULT_SEED ?? randomInt(2 ** 31));
const ROUNDS = Number(process.env.RATE_LIMIT_FAULT_ROUNDS ?? 3);
const rng = seedrandom(String(SEED));
const pick = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
const seedNote = `(replay with RATE_LIMIT_FAULT_SEED=${SEED})`;

const MAX = pick(5, 20);
const EXPENSIVE_MAX = pick(1, MAX - 1);
const UNAUTHENTICATED_MAX = pick(2, 10);
const IN_FLIGHT = 16;

interface Sent {
  key: string | null;
  expensive: boolean;
  status: number;
  code?: string;
  message?: string;
  retryAfter: number;
  remaining: number;
}

let t: TestApp;
const tally = { requests: 0, limited: 0, ms: 0 };
const urls: string[] = [];
const replicas: FastifyInstance[] = [];
const redisClients: ReturnType<typeof createRedis>[] = [];

beforeAll(async () => {
  t = await startTestApp({
    RATE_LIMIT_MAX: String(MAX),
    RATE_LIMIT_EXPENSIVE_MAX: String(EXPENSIVE_MAX),
    RATE_LIMIT_UNAUTHENTICATED_MAX: String(UNAUTHENTICATED_MAX),
    // Long enough that no budget refills during a round, however slow the machine.
    RATE_LIMIT_WINDOW_S: '3600',
  });
  urls.push(t.url);
  for (let i = 0; i < 2; i++) {
    const redis = createRedis(REDIS_URL);
    redisClients.push(redis);
    const app = await buildApp({ db: t.db, store: t.store, queue: t.queue, config: t.config, logger: pino({ level: 'silent' }), redis });
    replicas.push(app);
    urls.push(await app.listen({ host: '127.0.0.1', port: 0 }));
  }
});

afterAll(async () => {
  console.log(`rate limit faults: ${tally.requests} requests (${tally.limited} limited) in ${(tally.ms / 1000).toFixed(1)} s, seed ${SEED}`);
  await Promise.all(replicas.map((a) => a.close()));
  for (const r of redisClients) r.disconnect();
  await t?.close();
});

async function send(key: string | null, expensive: boolean): Promise<Sent> {
  const url = urls[Math.floor(rng() * urls.length)]!;
  const res = await fetch(`${url}/v1/jobs`, {
    method: expensive ? 'POST' : 'GET',
    headers: { authorization: `Bearer ${key ?? 'mk_guessed'}`, ...(expensive && { 'content-type': 'application/json' }) },
    ...(expensive && { body: JSON.stringify({ dataset_id: 'ds_none' }) }),
  });
  const body = (await res.json()) as { error?: { code: string; message: string; param: string | null } };
  return {
    key,
    expensive,
    status: res.status,
    code: body.error?.code,
    message: body.error?.message,
    retryAfter: Number(res.headers.get('retry-after') ?? 0),
    remaining: Number(res.headers.get('x-ratelimit-remaining') ?? -1),
  };
}

/** Runs the requests `IN_FLIGHT` at a time, in the (shuffled) order given. */
async function flood(plan: { key: string | null; expensive: boolean }[]): Promise<Sent[]> {
  const results: Sent[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < plan.length) {
        const { key, expensive } = plan[next++]!;
        results.push(await send(key, expensive));
      }
    }),
  );
  return results;
}

const count = (xs: Sent[], f: (x: Sent) => boolean) => xs.filter(f).length;

describe(`rate limit faults (seed ${SEED}, per key ${MAX}, expensive ${EXPENSIVE_MAX}, unauthenticated ${UNAUTHENTICATED_MAX})`, () => {
  for (let round = 0; round < ROUNDS; round++) {
    it(`round ${round}: every budget lets exactly its size through, across replicas`, async () => {
      const keys = await Promise.all(Array.from({ length: pick(2, 6) }, (_, i) => t.createKey(`round-${round}-${i}`)));
      const plan: { key: string | null; expensive: boolean }[] = keys.flatMap(({ key }) => Array.from({ length: pick(1, 3 * MAX) }, () => ({ key, expensive: rng() < 0.3 })));
      // Requests without a valid key come from this same address: a budget of their own.
      const unauthenticated = round === 0 ? pick(1, 3 * UNAUTHENTICATED_MAX) : 0;
      plan.push(...Array.from({ length: unauthenticated }, () => ({ key: null, expensive: rng() < 0.5 })));
      for (let i = plan.length - 1; i > 0; i--) {
        const j = Math.floor(rng() * (i + 1));
        [plan[i], plan[j]] = [plan[j]!, plan[i]!];
      }
      const started = performance.now();
      const sent = await flood(plan);
      tally.ms += performance.now() - started;
      tally.requests += sent.length;
      tally.limited += count(sent, (s) => s.status === 429);

      for (const s of sent.filter((x) => x.status === 429)) {
        expect(s.code, seedNote).toBe('rate_limited');
        expect(s.retryAfter, seedNote).toBeGreaterThanOrEqual(1);
        expect(s.retryAfter, seedNote).toBeLessThanOrEqual(3600);
      }
      for (const { key } of keys) {
        const mine = sent.filter((s) => s.key === key);
        const overKey = (s: Sent) => s.status === 429 && /^per-key /.test(s.message ?? '');
        const overExpensive = (s: Sent) => s.status === 429 && /^expensive /.test(s.message ?? '');
        expect(count(mine, (s) => s.status !== 429 && s.status !== (s.expensive ? 400 : 200)), seedNote).toBe(0);
        // Through the per-key check: answered, or stopped by the expensive budget after it.
        const passed = mine.filter((s) => !overKey(s));
        expect(passed.length, seedNote).toBe(Math.min(mine.length, MAX));
        // Each saw its own count: Redis counted them one by one, whichever replica asked.
        expect(new Set(passed.map((s) => s.remaining)).size, seedNote).toBe(passed.length);
        expect(Math.min(...passed.map((s) => s.remaining)), seedNote).toBe(MAX - passed.length);
        const expensivePassed = passed.filter((s) => s.expensive);
        expect(count(expensivePassed, (s) => !overExpensive(s)), seedNote).toBe(Math.min(expensivePassed.length, EXPENSIVE_MAX));
      }
      const anonymous = sent.filter((s) => s.key === null);
      expect(count(anonymous, (s) => s.status === 401), seedNote).toBe(Math.min(unauthenticated, UNAUTHENTICATED_MAX));
      expect(count(anonymous, (s) => s.status === 429), seedNote).toBe(Math.max(0, unauthenticated - UNAUTHENTICATED_MAX));
    });
  }
});
