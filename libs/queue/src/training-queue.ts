import { Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';

/** Every queue the system uses and the payload its messages carry (one typed map, one place). */
export interface QueuePayloads {
  training: { jobId: string };
}
export const TRAINING_QUEUE = 'training' as const;

export type TrainingQueue = Queue<QueuePayloads['training']>;

/** BullMQ needs `maxRetriesPerRequest: null` on connections that block (workers); harmless elsewhere. */
export function createRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true });
}

export function createTrainingQueue(connection: ConnectionOptions, prefix: string): TrainingQueue {
  return new Queue<QueuePayloads['training']>(TRAINING_QUEUE, { connection, prefix });
}

/** Infrastructure failures (lost Redis, S3 down) retry with backoff; user errors fail the job at once. */
export const TRAINING_ATTEMPTS = 5;

/**
 * Enqueues a job under its own id, so a repeated enqueue (API retry, reconciler) is a no-op while
 * the message exists. A finished message with the same id is removed first: Postgres decided the
 * job is live again (resumed or reconciled), so the old message is stale.
 */
export async function enqueueTraining(queue: TrainingQueue, jobId: string): Promise<void> {
  const existing = await queue.getJob(jobId);
  if (existing) {
    const state = await existing.getState();
    if (state !== 'completed' && state !== 'failed') return;
    await existing.remove();
  }
  await addTraining(queue, jobId);
}

/** Adds the message of a job that has none (a job created just now): one Redis round trip. */
export async function addTraining(queue: TrainingQueue, jobId: string): Promise<void> {
  await queue.add(
    'train',
    { jobId },
    {
      jobId,
      attempts: TRAINING_ATTEMPTS,
      backoff: { type: 'exponential', delay: 5_000 },
      removeOnComplete: { count: 1000 },
      removeOnFail: { count: 5000 },
    },
  );
}

/** The queue states that need a worker: waiting or retrying (delayed) messages and the ones being trained. */
const DEMAND_STATES = ['waiting', 'prioritized', 'delayed', 'active'] as const;

/**
 * How many training workers the queue asks for (what an autoscaler scales the worker pods on): every
 * message that is waiting, due for a retry or running. Counting the running ones keeps a busy worker
 * from being scaled away when the waiting count drops to zero.
 */
export async function trainingDemand(queue: TrainingQueue): Promise<Record<(typeof DEMAND_STATES)[number], number> & { demand: number }> {
  const counts = await queue.getJobCounts(...DEMAND_STATES);
  const byState = Object.fromEntries(DEMAND_STATES.map((s) => [s, counts[s] ?? 0])) as Record<(typeof DEMAND_STATES)[number], number>;
  return { ...byState, demand: DEMAND_STATES.reduce((sum, s) => sum + byState[s], 0) };
}
