import { z } from 'zod';

// Shapes every REST endpoint shares: the error body and cursor pagination.

/** Every `error.code` the API answers with; clients branch on these, never on messages. */
export const API_ERROR_CODES = [
  'invalid_parameter',
  'invalid_request',
  'invalid_dataset',
  'unauthorized',
  'forbidden',
  'not_found',
  'payload_too_large',
  'unsupported_media_type',
  'request_timeout',
  'uri_too_long',
  'headers_too_large',
  'idempotency_conflict',
  'job_finished',
  'model_too_large',
  'key_revoked',
  'rate_limited',
  'embedder_unavailable',
  'deadline_exceeded',
  'queue_unavailable',
  'server_busy',
  'internal_error',
] as const;
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

export const ErrorDetail = z.object({
  param: z.string().nullable(),
  code: z.string().optional(),
  message: z.string(),
});
export type ErrorDetail = z.infer<typeof ErrorDetail>;

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.enum(API_ERROR_CODES).describe('branch on this, never on the message'),
      message: z.string(),
      param: z.string().nullable().describe('the offending field, as a dotted path (hyperparameters.K), when one is at fault'),
      details: z.array(ErrorDetail).optional().describe('every problem, when there are several'),
    }),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof ErrorBody>;

/** Query of every list endpoint: `limit` items after the cursor `after` (the `next_cursor` of the previous page). */
export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: z.string().min(1).max(64).optional().describe('next_cursor of the previous page'),
});

export function page<T extends z.ZodType>(item: T) {
  return z.object({
    data: z.array(item),
    has_more: z.boolean(),
    next_cursor: z.string().nullable().describe('pass as ?after= to get the next page; null on the last page'),
  });
}

export interface Page<T> {
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

/** Timestamps are ISO 8601 strings in UTC. */
export const Timestamp = z.string().describe('ISO 8601, UTC');

export const IdParams = z.object({ id: z.string().min(1).max(64) });

/** A comma-separated query value (`?name=loss,lr`) as a list of the allowed values. */
export function commaList<T extends z.ZodType<string, string>>(item: T) {
  return z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()).filter((x) => x !== ''))
    .pipe(z.array(item).min(1));
}
