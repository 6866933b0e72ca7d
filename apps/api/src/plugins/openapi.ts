import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { createJsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { completeDocument } from './openapi-document.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * OpenAPI request body by media type, for routes that read their body themselves (uploads) and
     * so declare no body schema for Fastify to validate.
     */
    openapiBody?: Record<string, object>;
  }
}

/** OpenAPI generated from the routes' zod schemas: UI at /docs, document at /docs/json. */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  const zodTransform = createJsonSchemaTransform({});
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'MoCo training service',
        version: '1.0.0',
        description:
          'Self-supervised MoCo training as a service. Errors are `{"error": {"code", "message", "param"}}`; ' +
          'lists are `{data, has_more, next_cursor}` (pass next_cursor as ?after=). ' +
          'Requests are rate limited per API key (uploads and job creations also by a smaller budget; requests without a ' +
          'valid key per address): past the limit the answer is 429 `rate_limited` with `Retry-After` in seconds; ' +
          '`X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` tell the key\'s budget.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API key, mk_...' } } },
      security: [{ bearer: [] }],
    },
    transform: (document) => {
      const out = zodTransform(document);
      const body = document.route.config?.openapiBody;
      if (body) {
        out.schema = {
          ...out.schema,
          body: { content: Object.fromEntries(Object.entries(body).map(([type, schema]) => [type, { schema }])) },
        };
      }
      return out;
    },
    transformObject: (document) => completeDocument(jsonSchemaTransformObject(document)),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}
