import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ApiErrorCode } from '@moco/contracts';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ApiError, invalidParameters } from '../shared/api-error.js';

const CODE_BY_STATUS: Record<number, ApiErrorCode> = {
  401: 'unauthorized',
  404: 'not_found',
  408: 'request_timeout',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  431: 'headers_too_large',
};

const codeOf = (status: number): ApiErrorCode => CODE_BY_STATUS[status] ?? 'invalid_request';

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
    return new ApiError(status, codeOf(status), message ?? 'invalid request');
  }
  return new ApiError(500, 'internal_error', 'internal error');
}

/**
 * Fastify's `frameworkErrors`: errors its router raises before any route or error handler runs
 * (FST_ERR_BAD_URL, FST_ERR_MAX_PARAM_LENGTH), which it would otherwise answer in a shape of its own.
 */
export function answerFrameworkError(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const apiError = toApiError(err);
  void reply.code(apiError.statusCode).send(apiError.toBody());
}

const errorJson = (status: number, message: string) => JSON.stringify(new ApiError(status, codeOf(status), message).toBody());

const CLIENT_ERROR_LINGER_MS = 1_000;

const CLIENT_ERRORS: Record<string, { status: number; message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, message: 'the request was not received in time' },
  HPE_HEADER_OVERFLOW: { status: 431, message: 'the request headers are too large' },
};

/**
 * Fastify's `clientErrorHandler`: requests Node's HTTP parser refuses (bad request line or headers,
 * conflicting lengths, timeouts) never reach Fastify, so the answer is written on the socket here.
 */
export function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // A response already under way on this socket (pipelining, a slow reply) cannot take another status line.
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (!socket.writable || inFlight?.headersSent) {
    socket.destroy(err);
    return;
  }
  const { status, message } = CLIENT_ERRORS[err.code ?? ''] ?? { status: 400, message: 'malformed HTTP request' };
  const body = errorJson(status, message);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  // Closing at once, with the client's bytes unread, would reset the connection and could drop the
  // answer before the client reads it: give it a moment to read and close its side.
  setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS).unref();
}

/**
 * Refusals Node's HTTP server would otherwise write itself, with an empty body: an Expect it cannot
 * meet (417), and an HTTP/1.1 request without Host (400; the app turns Node's own check off,
 * `requireHostHeader: false`, so that it is made here).
 */
export function answerProtocolRefusals(app: FastifyInstance): void {
  app.server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
    const body = errorJson(417, 'only Expect: 100-continue is supported');
    res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  });
  app.addHook('onRequest', async (request) => {
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      throw new ApiError(400, 'invalid_request', 'an HTTP/1.1 request needs a Host header');
    }
  });
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
