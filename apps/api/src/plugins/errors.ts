import type { ApiErrorCode } from '@moco/contracts';
import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ApiError, invalidParameters } from '../shared/api-error.js';

const CODE_BY_STATUS: Record<number, ApiErrorCode> = {
  401: 'unauthorized',
  404: 'not_found',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/** `/hyperparameters/K` (a validation error's instancePath) -> `hyperparameters.K`. */
function paramOf(instancePath: string): string {
  return instancePath.split('/').filter(Boolean).join('.');
}

/** Maps whatever a route threw to the one error shape `{error: {code, message, param}}`. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (hasZodFastifySchemaValidationErrors(err)) {
    return invalidParameters(err.validation.map((v) => ({ param: paramOf(v.instancePath), message: v.message ?? 'invalid' })));
  }
  const { statusCode: status, message } = err as Partial<FastifyError>;
  // Fastify's own 4xx (malformed JSON, unsupported media type, ...) carry a message meant for clients.
  if (status !== undefined && status >= 400 && status < 500) {
    return new ApiError(status, CODE_BY_STATUS[status] ?? 'invalid_request', message ?? 'invalid request');
  }
  return new ApiError(500, 'internal_error', 'internal error');
}

/** One error handler for every route (5xx details go to the log only) and a 404 in the same shape. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const apiError = toApiError(err);
    if (apiError.statusCode >= 500) {
      request.log.error({ err }, 'request failed');
      // An ApiError's message is meant for clients (503 server_busy says when to retry); anything else may leak internals.
      if (!(err instanceof ApiError)) apiError.message = `internal error (request id ${request.id})`;
    } else {
      request.log.info({ code: apiError.code, param: apiError.param }, apiError.message);
    }
    if (apiError.statusCode === 401) reply.header('www-authenticate', 'Bearer');
    if (apiError.retryAfterS !== undefined) reply.header('retry-after', String(apiError.retryAfterS));
    return reply.code(apiError.statusCode).send(apiError.toBody());
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(new ApiError(404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`).toBody()),
  );
}
