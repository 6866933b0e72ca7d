import type { Db } from '@moco/db';
import type { TrainingQueue } from '@moco/queue';
import type { ObjectStore } from '@moco/storage';
import type { FastifyBaseLogger } from 'fastify';
import { withTimeout } from '../shared/timeout.js';

const CHECK_TIMEOUT_MS = 2_000;

export type CheckResult = 'ok' | 'failed';

export type HealthService = ReturnType<typeof createHealthService>;

export function createHealthService(deps: { db: Db; queue: TrainingQueue; store: ObjectStore; log: FastifyBaseLogger }) {
  const checks: Record<string, () => Promise<unknown>> = {
    postgres: () => deps.db.$queryRaw`SELECT 1`,
    // BullMQ hides its Redis client: a count is one cheap round trip too.
    redis: () => deps.queue.getJobCounts('waiting'),
    storage: () => deps.store.check(),
  };
  return {
    /** Each dependency's state; why one failed goes to the log, not to the (unauthenticated) caller. */
    async readiness(): Promise<{ ready: boolean; checks: Record<string, CheckResult> }> {
      const entries = await Promise.all(
        Object.entries(checks).map(async ([name, check]): Promise<[string, CheckResult]> => {
          try {
            await withTimeout(check(), CHECK_TIMEOUT_MS, `${name} check`);
            return [name, 'ok'];
          } catch (err) {
            deps.log.warn({ err, check: name }, 'readiness check failed');
            return [name, 'failed'];
          }
        }),
      );
      return { ready: entries.every(([, r]) => r === 'ok'), checks: Object.fromEntries(entries) };
    },
  };
}
