import { ErrorBody, QueueDepth } from '@moco/contracts';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { HealthService } from '../../health/health-service.js';

const Readiness = z.object({
  status: z.enum(['ok', 'unavailable']),
  checks: z.record(z.string(), z.enum(['ok', 'failed'])).describe('postgres, redis, storage'),
});

const healthRoutes: FastifyPluginAsyncZod<{ health: HealthService }> = async (app, { health }) => {
  app.get(
    '/healthz',
    { schema: { tags: ['health'], operationId: 'getHealth', summary: 'The process is alive', security: [], response: { 200: z.object({ status: z.literal('ok') }) } } },
    async () => ({ status: 'ok' as const }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        operationId: 'getReadiness',
        summary: 'Postgres, Redis and the object store answer',
        security: [],
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
      const { ready, checks } = await health.readiness();
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'unavailable', checks });
    },
  );
  app.get(
    '/queue-depth',
    {
      schema: {
        tags: ['health'],
        operationId: 'getQueueDepth',
        summary: 'Training messages that need a worker (what the worker autoscaler reads)',
        description: 'Unauthenticated like /metrics: counts only. KEDA\'s metrics-api scaler reads `demand` (deploy/base/worker.yaml).',
        security: [],
        response: { 200: QueueDepth, 503: ErrorBody },
      },
    },
    async () => health.queueDepth(),
  );
};

export default healthRoutes;
