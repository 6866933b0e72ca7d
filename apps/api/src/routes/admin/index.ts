import { ErrorBody, ProjectList, QueueHealth } from '@moco/contracts';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { AdminService } from '../../admin/admin-service.js';
import { requireAdmin } from '../../shared/scope.js';

/** `/v1/admin/*`: operator views for the admin dashboard; other keys get 403 `forbidden`. */
const adminRoutes: FastifyPluginAsyncZod<{ admin: AdminService }> = async (app, { admin }) => {
  // Runs after the /v1 auth hook (a parent scope's hooks run first), so the principal is set.
  app.addHook('onRequest', async (request) => requireAdmin(request.principal));

  app.get(
    '/queue',
    {
      schema: {
        tags: ['admin'],
        summary: 'Training queue health: message counts and connected workers',
        response: { 200: QueueHealth, 403: ErrorBody, 503: ErrorBody },
      },
    },
    async () => admin.queueHealth(),
  );

  app.get(
    '/projects',
    { schema: { tags: ['admin'], summary: 'Every project, by name', response: { 200: ProjectList, 403: ErrorBody } } },
    async () => ({ data: await admin.projects() }),
  );
};

export default adminRoutes;
