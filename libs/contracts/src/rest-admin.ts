import { z } from 'zod';
import { page, PageQuery, Timestamp } from './rest-common.js';

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

// API keys. A secret is shown once, when it is made (create, rotate); lists show its prefix only.

export const ApiKeyRole = z.enum(['member', 'admin']);

export const ApiKey = z
  .object({
    id: z.string(),
    project_id: z.string(),
    name: z.string(),
    role: ApiKeyRole.describe('admin keys act on every project and reach /v1/admin'),
    prefix: z.string().describe('the first characters of the secret, to tell keys apart'),
    created_at: Timestamp,
    last_used_at: Timestamp.nullable().describe('to the minute'),
    revoked_at: Timestamp.nullable(),
    expires_at: Timestamp.nullable().describe('set when the key was rotated with a grace period: it stops working then'),
  })
  .meta({ id: 'ApiKey' });
export type ApiKey = z.infer<typeof ApiKey>;

export const ApiKeyPage = page(ApiKey).meta({ id: 'ApiKeyPage' });

export const ListApiKeysQuery = PageQuery.extend({
  project_id: z.string().optional().describe('one project (default: every project)'),
});

export const CreateApiKeyRequest = z
  .strictObject({
    project_id: z.string().min(1).max(64).optional().describe('an existing project'),
    project_name: z.string().min(1).max(200).optional().describe('a project by name, created when there is none'),
    name: z.string().min(1).max(200).default('default'),
    role: ApiKeyRole.default('member'),
  })
  .refine((r) => (r.project_id === undefined) !== (r.project_name === undefined), {
    message: 'give exactly one of project_id and project_name',
    path: ['project_id'],
  })
  .meta({ id: 'CreateApiKeyRequest' });
export type CreateApiKeyRequest = z.input<typeof CreateApiKeyRequest>;

export const CreatedApiKey = ApiKey.extend({ key: z.string().describe('the secret, mk_...: shown only in this answer') }).meta({
  id: 'CreatedApiKey',
});
export type CreatedApiKey = z.infer<typeof CreatedApiKey>;

export const RotateApiKeyRequest = z
  .strictObject({
    grace_period_s: z
      .number()
      .int()
      .min(0)
      .max(30 * 86_400)
      .default(0)
      .describe('how long the old key keeps working (0: revoked at once; at most 30 days)'),
  })
  .meta({ id: 'RotateApiKeyRequest' });
export type RotateApiKeyRequest = z.input<typeof RotateApiKeyRequest>;

export const RotatedApiKey = CreatedApiKey.extend({ previous: ApiKey.describe('the replaced key, revoked or expiring') }).meta({
  id: 'RotatedApiKey',
});
export type RotatedApiKey = z.infer<typeof RotatedApiKey>;
