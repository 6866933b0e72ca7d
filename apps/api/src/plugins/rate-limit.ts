import rateLimit from '@fastify/rate-limit';
import type { createRedis } from '@moco/queue';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiConfig } from '../config.js';
import { REDIS_TIMEOUT_MS } from '../jobs/job-service.js';
import { ApiError } from '../shared/api-error.js';
import { withTimeout } from '@moco/service';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Counted against the key's smaller budget for costly requests too (uploads, job creation). */
    expensive?: boolean;
  }
}

/** Counts a request against one budget; throws 429 `rate_limited` (with Retry-After) once it is spent. */
export type RateLimit = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

export interface RateLimits {
  /** Every authenticated request, by key. */
  perKey: RateLimit;
  /** Requests of `expensive` routes, by key. */
  expensive: RateLimit;
  /** Requests without a valid key, by client address. */
  unauthenticated: RateLimit;
}

type Redis = ReturnType<typeof createRedis>;
type Limiter = ReturnType<FastifyInstance['createRateLimit']>;

/**
 * One budget of `max` requests per window for each key `keyOf` names. Each budget is its own
 * registration of @fastify/rate-limit (in a scope of its own), so its Redis keys are plainly
 * `<QUEUE_PREFIX>:rate-limit:<budget>:<key>` and replicas on the same Redis share them.
 */
async function budget(
  parent: FastifyInstance,
  opts: { name: string; max: number; windowMs: number; keyOf?: (request: FastifyRequest) => string; redis?: Redis; prefix: string; headers: boolean },
): Promise<RateLimit> {
  let limiter: Limiter | undefined;
  await parent.register(async (scope) => {
    await scope.register(rateLimit, {
      global: false,
      max: opts.max,
      timeWindow: opts.windowMs,
      // Unset: the client address (IPv6 by its /64, as one host usually holds the whole block).
      ...(opts.keyOf && { keyGenerator: opts.keyOf }),
      // Without a Redis client (tests, tools building the app alone) counts stay in this process.
      ...(opts.redis && { redis: opts.redis, nameSpace: `${opts.prefix}:rate-limit:${opts.name}:` }),
    });
    limiter = scope.createRateLimit();
  });
  const check = limiter!;
  return async (request, reply) => {
    // Limits protect the service but must not take it down: while Redis is away (ioredis would hold
    // the command in its offline queue) requests go through unlimited, as Postgres still serves them.
    if (opts.redis && opts.redis.status !== 'ready') return;
    let state: Awaited<ReturnType<Limiter>>;
    try {
      state = await withTimeout(check(request), REDIS_TIMEOUT_MS, 'rate limit');
    } catch (err) {
      request.log.warn({ err }, 'rate limit not checked');
      return;
    }
    if (state.isAllowed) return;
    const resetS = Math.max(1, state.ttlInSeconds);
    if (opts.headers) {
      reply.header('x-ratelimit-limit', state.max);
      reply.header('x-ratelimit-remaining', state.remaining);
      reply.header('x-ratelimit-reset', resetS);
    }
    if (!state.isExceeded) return;
    reply.header('retry-after', resetS);
    throw new ApiError(429, 'rate_limited', `${opts.name} rate limit of ${state.max} requests per ${opts.windowMs / 1000} s reached: retry in ${resetS} s`);
  };
}

export async function createRateLimits(app: FastifyInstance, deps: { redis?: Redis; config: ApiConfig }): Promise<RateLimits> {
  const { config, redis } = deps;
  const common = { windowMs: config.RATE_LIMIT_WINDOW_S * 1000, redis, prefix: config.QUEUE_PREFIX };
  const byKey = (request: FastifyRequest) => request.principal.keyId;
  return {
    perKey: await budget(app, { ...common, name: 'per-key', max: config.RATE_LIMIT_MAX, keyOf: byKey, headers: true }),
    expensive: await budget(app, { ...common, name: 'expensive', max: config.RATE_LIMIT_EXPENSIVE_MAX, keyOf: byKey, headers: false }),
    unauthenticated: await budget(app, {
      ...common,
      name: 'unauthenticated',
      max: config.RATE_LIMIT_UNAUTHENTICATED_MAX,
      headers: false,
    }),
  };
}

/** Counts every request of `scope` against its key's budgets; registered after the auth hook. */
export function limitByKey(scope: FastifyInstance, limits: RateLimits): void {
  scope.addHook('onRequest', async (request, reply) => {
    await limits.perKey(request, reply);
    if (request.routeOptions.config.expensive) await limits.expensive(request, reply);
  });
}
