import { setTimeout as sleep } from 'node:timers/promises';
import { createRedis } from '@moco/queue';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../app.js';
import type { ApiConfig } from '../config.js';
import type { CreatedKey } from '../keys/key-service.js';
import { bearer, REDIS_URL, useTestApp } from '../testing/test-app.js';

// Limits are counted in Redis: two app instances (replicas) on one Redis prefix share a key's budget.
const t = useTestApp({ RATE_LIMIT_MAX: '6', RATE_LIMIT_EXPENSIVE_MAX: '2', RATE_LIMIT_UNAUTHENTICATED_MAX: '3', RATE_LIMIT_WINDOW_S: '600' });
const logger = pino({ level: 'silent' });
const redisClients: ReturnType<typeof createRedis>[] = [];
const apps: FastifyInstance[] = [];

/** Another replica of the test app: its own Redis connection, the same database and prefix. */
async function replica(config: ApiConfig = t.current.config, redisUrl = REDIS_URL): Promise<FastifyInstance> {
  const redis = createRedis(redisUrl);
  redis.on('error', () => {}); // the unreachable one's reconnect attempts
  redisClients.push(redis);
  const { db, store, queue } = t.current;
  const app = await buildApp({ db, store, queue, config, logger, redis });
  apps.push(app);
  return app;
}

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  for (const r of redisClients) r.disconnect();
});

const get = (app: FastifyInstance, url: string, key?: CreatedKey | string) => app.inject({ url, headers: key ? bearer(key) : {} });

describe('rate limits', () => {
  let other: FastifyInstance;
  beforeAll(async () => {
    other = await replica();
  });

  it("share one key's budget across replicas and answer 429 rate_limited with Retry-After", async () => {
    const alice = await t.current.createKey('alice');
    const remaining: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await get(i % 2 ? other : t.current.app, '/v1/datasets', alice);
      expect(res.statusCode, `request ${i}`).toBe(200);
      remaining.push(String(res.headers['x-ratelimit-remaining']));
    }
    expect(remaining).toEqual(['5', '4', '3', '2', '1', '0']);
    for (const app of [t.current.app, other]) {
      const res = await get(app, '/v1/datasets', alice);
      expect(res.statusCode).toBe(429);
      expect(res.json()).toEqual({ error: { code: 'rate_limited', message: expect.stringMatching(/rate limit of 6 requests per 600 s/), param: null } });
      const retryAfter = Number(res.headers['retry-after']);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(600);
    }
    // Another key of the same project, and the operations endpoints, are not held back.
    const bob = await t.current.createKey('alice');
    expect((await get(other, '/v1/datasets', bob)).statusCode).toBe(200);
    for (const url of ['/healthz', '/readyz', '/metrics']) {
      for (let i = 0; i < 10; i++) expect((await get(t.current.app, url)).statusCode, url).toBe(200);
    }
  });

  it('give uploads and job creations a smaller budget of their own', async () => {
    const carol = await t.current.createKey('carol');
    const createJob = (app: FastifyInstance) =>
      app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(carol), payload: { dataset_id: 'ds_none' } });
    expect((await createJob(t.current.app)).statusCode).toBe(400);
    expect((await createJob(other)).statusCode).toBe(400);
    const limited = await createJob(t.current.app);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error).toMatchObject({ code: 'rate_limited', message: expect.stringMatching(/^expensive rate limit of 2/) });
    const upload = await other.inject({ method: 'POST', url: '/v1/datasets', headers: { ...bearer(carol), 'content-type': 'application/octet-stream' }, payload: 'x' });
    expect(upload.statusCode).toBe(429);
    // Reads still go through on the key's general budget.
    expect((await get(other, '/v1/jobs', carol)).statusCode).toBe(200);
  });

  it('limit requests without a valid key by address, without holding back valid keys from it', async () => {
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await get(i % 2 ? other : t.current.app, '/v1/jobs', i % 3 ? 'mk_guess' : undefined)).statusCode);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const res = await get(t.current.app, '/v1/jobs', 'mk_guess');
    expect(res.json().error.code).toBe('rate_limited');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect((await get(t.current.app, '/v1/jobs', await t.current.createKey('dave'))).statusCode).toBe(200);
  });

  it('refill after the window', async () => {
    const app = await replica({ ...t.current.config, RATE_LIMIT_MAX: 2, RATE_LIMIT_WINDOW_S: 2 });
    const erin = await t.current.createKey('erin');
    // Until the budget is spent (a slow machine may see a window end on the way: then more pass).
    let limited;
    for (let i = 0; i < 20 && !limited; i++) {
      const res = await get(app, '/v1/jobs', erin);
      if (res.statusCode === 429) limited = res;
      else expect(res.statusCode).toBe(200);
    }
    const retryAfter = Number(limited?.headers['retry-after']);
    expect([1, 2]).toContain(retryAfter);
    await sleep(retryAfter * 1000 + 200);
    expect((await get(app, '/v1/jobs', erin)).statusCode).toBe(200);
  });

  it('let requests through while Redis does not answer', async () => {
    // Nothing listens on port 1: the client never becomes ready, as when Redis is down.
    const app = await replica({ ...t.current.config, RATE_LIMIT_MAX: 1 }, 'redis://127.0.0.1:1');
    const frank = await t.current.createKey('frank');
    for (let i = 0; i < 3; i++) expect((await get(app, '/v1/jobs', frank)).statusCode).toBe(200);
  });
});
