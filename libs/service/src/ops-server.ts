import Fastify, { type FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { checkReadiness, type ReadinessCheck } from './readiness.js';

/** A registry of the service's own (not prom-client's global one), with the process's default metrics. */
export function createServiceRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * What an orchestrator asks a service that has no HTTP API of its own: `/healthz` (the process
 * answers), `/readyz` (every dependency answers; 503 naming the failed ones otherwise) and
 * Prometheus `/metrics`. No port (the service's *_OPS_PORT unset): not served, null.
 */
export async function startOpsServer(opts: {
  host: string;
  port: number | undefined;
  registry: Registry;
  checks: Record<string, ReadinessCheck>;
  onCheckFailure?: (name: string, err: unknown) => void;
}): Promise<{ server: FastifyInstance; url: string } | null> {
  if (opts.port === undefined) return null;
  const server = Fastify({ logger: false });
  server.get('/healthz', async () => ({ status: 'ok' }));
  server.get('/readyz', async (_request, reply) => {
    const { ready, checks } = await checkReadiness(opts.checks, opts.onCheckFailure);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'unavailable', checks });
  });
  server.get('/metrics', async (_request, reply) => {
    reply.header('content-type', opts.registry.contentType);
    return opts.registry.metrics();
  });
  const url = await server.listen({ host: opts.host, port: opts.port });
  return { server, url };
}
