import { z } from 'zod';
import { Timestamp } from './rest-common.js';

// Operator endpoints under /v1/admin (admin keys only), read by the admin dashboard.

export const QueueWorker = z.object({
  name: z.string().nullable().describe('the BullMQ worker name, when the worker set one'),
  addr: z.string().describe("the worker's Redis connection, host:port as Redis sees it"),
  age_s: z.number().int().describe('seconds since the connection opened'),
  idle_s: z.number().int().describe('seconds since its last Redis command'),
});
export type QueueWorker = z.infer<typeof QueueWorker>;

export const QueueHealth = z
  .object({
    queue: z.string(),
    waiting: z.number().int(),
    active: z.number().int(),
    delayed: z.number().int().describe('waiting out a retry backoff'),
    failed: z.number().int().describe('messages kept after their last attempt (the newest 5000)'),
    completed: z.number().int().describe('messages kept after success (the newest 1000)'),
    workers: z.array(QueueWorker).describe('workers connected to the queue now'),
  })
  .meta({ id: 'QueueHealth' });
export type QueueHealth = z.infer<typeof QueueHealth>;

/** GET /queue-depth (unauthenticated, counts only): what the training workers' autoscaler reads. */
export const QueueDepth = z
  .object({
    waiting: z.number().int(),
    prioritized: z.number().int(),
    delayed: z.number().int().describe('waiting out a retry backoff'),
    active: z.number().int().describe('being trained now'),
    demand: z.number().int().describe('waiting + prioritized + delayed + active: the training workers the queue asks for'),
  })
  .meta({ id: 'QueueDepth' });
export type QueueDepth = z.infer<typeof QueueDepth>;

export const Project = z.object({ id: z.string(), name: z.string(), created_at: Timestamp }).meta({ id: 'Project' });
export type Project = z.infer<typeof Project>;

export const ProjectList = z.object({ data: z.array(Project) });
