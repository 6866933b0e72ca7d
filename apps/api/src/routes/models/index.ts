import { EmbeddingsRequest, EmbeddingsResponse, ErrorBody, ListModelsQuery, Model, ModelList, PromoteModelRequest } from '@moco/contracts';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ModelService } from '../../models/model-service.js';
import { bearerToken } from '../../plugins/auth.js';
import { readScope } from '../../shared/scope.js';

/** `/v1/models` (promotion) and `/v1/embeddings` (REST mirror of gRPC Embed). */
const modelRoutes: FastifyPluginAsyncZod<{ models: ModelService }> = async (app, { models }) => {
  app.post(
    '/models',
    {
      schema: {
        tags: ['models'],
        operationId: 'promoteModel',
        summary: 'Promote a checkpoint under an alias',
        description:
          'Points the alias (created or moved) at a checkpoint of this project (admin keys: of any project, setting that ' +
          "project's alias). Embedders switch to it without a restart; one that fails to load it keeps serving the previous model.",
        body: PromoteModelRequest,
        response: { 200: Model, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (request) => models.promote(request.principal, request.body),
  );

  app.get(
    '/models',
    {
      schema: {
        tags: ['models'],
        operationId: 'listModels',
        summary: 'List promoted models, newest checkpoint first',
        description: 'Admin keys: every project, or `?project_id=`.',
        querystring: ListModelsQuery,
        response: { 200: ModelList, 404: ErrorBody },
      },
    },
    async (request) => ({ data: await models.list(readScope(request.principal, request.query.project_id)) }),
  );

  app.post(
    '/embeddings',
    {
      schema: {
        tags: ['models'],
        operationId: 'createEmbeddings',
        summary: 'Embed images (REST mirror of gRPC Embed)',
        description:
          'Images are preprocessed with the model checkpoint\'s evaluation transform. Errors name the image (`param: images.3`). ' +
          'For bulk work prefer gRPC EmbedStream: packed float32 instead of JSON numbers.',
        body: EmbeddingsRequest,
        response: { 200: EmbeddingsResponse, 400: ErrorBody, 404: ErrorBody, 413: ErrorBody, 503: ErrorBody, 504: ErrorBody },
      },
    },
    // The bearer token was verified by the auth hook; the embedder checks it again for its own project scope.
    async (request) => models.embed(bearerToken(request)!, request.body),
  );
};

export default modelRoutes;
