import type { ApiErrorCode, ErrorBody, ErrorDetail } from '@moco/contracts';
import type { z } from 'zod';

/** A failure the client caused or should know about; anything else is a 500 whose details stay in the log. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  /** Sent as Retry-After: when a client that was refused for lack of capacity may try again. */
  retryAfterS?: number;

  constructor(
    readonly statusCode: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly param: string | null = null,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, param: this.param, ...(this.details && { details: this.details }) } };
  }
}

/** Resources of other projects are "not found" too, so ids never reveal that they exist. */
export function notFound(what: string, id: string): ApiError {
  return new ApiError(404, 'not_found', `no ${what} ${id}`);
}

/** 400 naming the first problem's field in `param` and listing all of them. */
export function invalidParameters(problems: { param: string; message: string }[]): ApiError {
  const [first] = problems;
  if (!first) throw new Error('invalidParameters needs at least one problem');
  return new ApiError(
    400,
    'invalid_parameter',
    problems.map((p) => (p.param ? `${p.param}: ${p.message}` : p.message)).join('; '),
    first.param || null,
    problems.map((p) => ({ param: p.param || null, message: p.message })),
  );
}

/** 503 for work the server has no capacity for now, with when to retry. */
export function serverBusy(message: string, retryAfterS: number): ApiError {
  const err = new ApiError(503, 'server_busy', message);
  err.retryAfterS = retryAfterS;
  return err;
}

export function invalidParameter(param: string, message: string): ApiError {
  return invalidParameters([{ param, message }]);
}

/** Parses a value the route could not give Fastify to validate (a body read by hand), with the same 400 shape. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw invalidParameters(result.error.issues.map((i) => ({ param: i.path.join('.'), message: i.message })));
}
