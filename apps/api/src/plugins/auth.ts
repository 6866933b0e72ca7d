import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { KeyService } from '../keys/key-service.js';
import { ApiError } from '../shared/api-error.js';
import type { Principal } from '../shared/scope.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on every /v1 route. */
    principal: Principal;
  }
}

/** The key of `Authorization: Bearer <key>`, or undefined. */
export function bearerToken(request: FastifyRequest): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1];
}

/**
 * Requires `Authorization: Bearer <key>` on every route of `scope`. Runs at onRequest, before the
 * body is read, so an unauthenticated upload costs nothing.
 */
export function requireApiKey(scope: FastifyInstance, keys: KeyService): void {
  scope.decorateRequest('principal', null as unknown as Principal);
  scope.addHook('onRequest', async (request: FastifyRequest) => {
    const token = bearerToken(request);
    if (!token) throw new ApiError(401, 'unauthorized', 'missing API key: send Authorization: Bearer <key>');
    const principal = await keys.verify(token);
    if (!principal) throw new ApiError(401, 'unauthorized', 'invalid or revoked API key');
    request.principal = principal;
  });
}
