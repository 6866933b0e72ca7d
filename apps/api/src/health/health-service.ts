import type { QueueDepth } from '@moco/contracts';
import type { Db } from '@moco/db';
import { trainingDemand, type TrainingQueue } from '@moco/queue';
import { checkReadiness, withTimeout, type Readiness } from '@moco/service';
import type { ObjectStore } from '@moco/storage';
import type { FastifyBaseLogger } from 'fastify';
import { REDIS_TIMEOUT_MS } from '../jobs/job-service.js';
import { ApiError } from '../shared/api-error.js';

export type HealthService = ReturnType<typeof createHealthService>;

export function createHealthService(deps: { db: Db; queue: TrainingQueue; store: ObjectStore; log: FastifyBaseLogger }) {
  const checks = {
    postgres: () => deps.db.$queryRaw`SELECT 1`,
    // BullMQ hides its Redis client: a count is one cheap round trip too.
    redis: () => deps.queue.getJobCounts('waiting'),
    storage: () => deps.store.check(),
  };
  return {
    /** Each dependency's state; why one failed goes to the log, not to the (unauthenticated) caller. */
    readiness: (): Promise<Readiness> => checkReadiness(checks, (check, err) => deps.log.warn({ err, check }, 'readiness check failed')),

    /** Training messages that need a worker, by state; 503 `queue_unavailable` when Redis does not answer. */
    queueDepth: (): Promise<QueueDepth> =>
      withTimeout(trainingDemand(deps.queue), REDIS_TIMEOUT_MS, 'queue depth').catch((err: unknown) => {
        deps.log.warn({ err }, 'queue depth unavailable');
        throw new ApiError(503, 'queue_unavailable', 'the queue (Redis) did not answer');
      }),
  };
}
