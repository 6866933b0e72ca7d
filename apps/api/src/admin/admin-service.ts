import type { Project, QueueHealth, QueueWorker } from '@moco/contracts';
import type { Db } from '@moco/db';
import type { TrainingQueue } from '@moco/queue';
import { REDIS_TIMEOUT_MS } from '../jobs/job-service.js';
import { ApiError } from '../shared/api-error.js';
import { withTimeout } from '@moco/service';

const COUNTED = ['waiting', 'active', 'delayed', 'failed', 'completed'] as const;
// BullMQ names a worker's connection `<queue client name>:w:<worker name>` (plain, for unnamed workers).
const WORKER_NAME_SEPARATOR = ':w:';

export type AdminService = ReturnType<typeof createAdminService>;

/** A row of Redis CLIENT LIST for a connection BullMQ recognised as a worker of the queue. */
function toWorker(client: Record<string, string>): QueueWorker {
  const raw = client.rawname ?? '';
  const at = raw.indexOf(WORKER_NAME_SEPARATOR);
  return {
    name: at >= 0 ? raw.slice(at + WORKER_NAME_SEPARATOR.length) : null,
    addr: client.addr ?? '',
    age_s: Number(client.age ?? 0),
    idle_s: Number(client.idle ?? 0),
  };
}

/** What operators see beyond the per-project resources: the queue's health and the projects. */
export function createAdminService(deps: { db: Db; queue: TrainingQueue }) {
  return {
    /** Message counts and connected workers, straight from Redis: 503 `queue_unavailable` when it does not answer. */
    async queueHealth(): Promise<QueueHealth> {
      const { queue } = deps;
      const [counts, clients] = await withTimeout(
        Promise.all([queue.getJobCounts(...COUNTED), queue.getWorkers()]),
        REDIS_TIMEOUT_MS,
        'queue health',
      ).catch((err: unknown) => {
        throw new ApiError(503, 'queue_unavailable', `the queue (Redis) did not answer: ${(err as Error).message}`);
      });
      return {
        queue: queue.name,
        waiting: counts.waiting ?? 0,
        active: counts.active ?? 0,
        delayed: counts.delayed ?? 0,
        failed: counts.failed ?? 0,
        completed: counts.completed ?? 0,
        workers: clients.map((c) => toWorker(c as Record<string, string>)),
      };
    },

    /** Every project, by name: tenants are few, so no pagination. */
    async projects(): Promise<Project[]> {
      const rows = await deps.db.project.findMany({ orderBy: [{ name: 'asc' }, { id: 'asc' }] });
      return rows.map((p) => ({ id: p.id, name: p.name, created_at: p.createdAt.toISOString() }));
    },
  };
}
