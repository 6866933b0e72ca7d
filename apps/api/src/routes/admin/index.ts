import {
  ApiKey,
  ApiKeyPage,
  CreateApiKeyRequest,
  CreatedApiKey,
  ErrorBody,
  IdParams,
  ListApiKeysQuery,
  ProjectList,
  QueueHealth,
  RotateApiKeyRequest,
  RotatedApiKey,
} from '@moco/contracts';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { AdminService } from '../../admin/admin-service.js';
import type { KeyService } from '../../keys/key-service.js';
import { requireAdmin } from '../../shared/scope.js';

/** `/v1/admin/*`: operator views for the admin dashboard and API key management; other keys get 403 `forbidden`. */
const adminRoutes: FastifyPluginAsyncZod<{ admin: AdminService; keys: KeyService }> = async (app, { admin, keys }) => {
  // Runs after the /v1 auth hook (a parent scope's hooks run first), so the principal is set.
  app.addHook('onRequest', async (request) => requireAdmin(request.principal));

  app.get(
    '/queue',
    {
      schema: {
        tags: ['admin'],
        operationId: 'getAdminQueue',
        summary: 'Training queue health: message counts and connected workers',
        response: { 200: QueueHealth, 403: ErrorBody, 503: ErrorBody },
      },
    },
    async () => admin.queueHealth(),
  );

  app.get(
    '/projects',
    { schema: { tags: ['admin'], operationId: 'listProjects', summary: 'Every project, by name', response: { 200: ProjectList, 403: ErrorBody } } },
    async () => ({ data: await admin.projects() }),
  );

  app.get(
    '/keys',
    {
      schema: {
        tags: ['admin'],
        operationId: 'listApiKeys',
        summary: 'List API keys, newest first (prefixes only: secrets are never shown again)',
        querystring: ListApiKeysQuery,
        response: { 200: ApiKeyPage, 403: ErrorBody },
      },
    },
    async (request) => keys.list(request.query),
  );

  app.post(
    '/keys',
    {
      schema: {
        tags: ['admin'],
        operationId: 'createApiKey',
        summary: 'Create an API key',
        description: 'For an existing project (`project_id`) or one by name (`project_name`, created when there is none). The secret is in this answer only.',
        body: CreateApiKeyRequest,
        response: { 201: CreatedApiKey, 400: ErrorBody, 403: ErrorBody, 404: ErrorBody },
      },
    },
    async (request, reply) => reply.code(201).send(await keys.create(request.body)),
  );

  app.post(
    '/keys/:id/revoke',
    {
      schema: {
        tags: ['admin'],
        operationId: 'revokeApiKey',
        summary: 'Revoke an API key',
        description: 'The key is refused from the next request on by the API that revoked it, and within a second by other API replicas and the embedder (their key caches hear of it through Postgres). Repeating is harmless (the first revocation time stays).',
        params: IdParams,
        response: { 200: ApiKey, 403: ErrorBody, 404: ErrorBody },
      },
    },
    async (request) => keys.revoke(request.params.id),
  );

  app.post(
    '/keys/:id/rotate',
    {
      schema: {
        tags: ['admin'],
        operationId: 'rotateApiKey',
        summary: 'Rotate an API key',
        description:
          'Makes a new secret for the same project, name and role (in this answer only) and retires the old key: revoked at once, ' +
          'or after `grace_period_s` (its `expires_at`), so clients can switch over. A key revoked or rotated already is 409 `key_revoked`.',
        params: IdParams,
        // Fastify hands a request without a body over as null.
        body: RotateApiKeyRequest.nullish(),
        response: { 201: RotatedApiKey, 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (request, reply) => reply.code(201).send(await keys.rotate(request.params.id, request.body?.grace_period_s ?? 0)),
  );
};

export default adminRoutes;
