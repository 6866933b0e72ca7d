import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { KeyService } from '../keys/key-service.js';
import { ApiError } from '../shared/api-error.js';
import type { Principal } from '../shared/scope.js';
import type { RateLimit } from './rate-limit.js';

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
 * body is read, so an unauthenticated upload costs nothing. Requests without a valid key count
 * against their address's budget, and get 429 instead of 401 once it is spent. (Looking the key up
 * first costs one indexed read, about what asking Redis would, and spares valid keys a round trip.)
 */
export function requireApiKey(scope: FastifyInstance, keys: KeyService, unauthenticated: RateLimit): void {
  scope.decorateRequest('principal', null as unknown as Principal);
  scope.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const token = bearerToken(request);
    const principal = token ? await keys.verify(token) : null;
    if (!principal) {
      await unauthenticated(request, reply);
      throw token
        ? new ApiError(401, 'unauthorized', 'invalid or revoked API key')
        : new ApiError(401, 'unauthorized', 'missing API key: send Authorization: Bearer <key>');
    }
    request.principal = principal;
  });
}
