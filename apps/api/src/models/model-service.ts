import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { EmbeddingsRequest, EmbeddingsResponse, Model as ModelResource } from '@moco/contracts';
import type { Db } from '@moco/db';
import { listModels, ModelError, promoteModel, unpackVectors, type EmbeddingClient, type Model } from '@moco/models';
import { ApiError } from '../shared/api-error.js';
import { actScope, type Principal } from '../shared/scope.js';

export type ModelService = ReturnType<typeof createModelService>;

export function toModelResource(m: Model): ModelResource {
  return {
    id: m.id,
    project_id: m.projectId,
    embedding_space_id: m.embeddingSpaceId,
    aliases: m.aliases,
    job_id: m.jobId,
    step: m.step,
    epoch: m.epoch,
    final: m.final,
    metrics: m.metrics,
    transform: m.transform,
    encoder: m.encoder,
    created_at: m.createdAt.toISOString(),
  };
}

function fromModelError(err: unknown): never {
  if (err instanceof ModelError) {
    throw err.code === 'not_found' ? new ApiError(404, 'not_found', err.message, err.param) : new ApiError(400, 'invalid_parameter', err.message, err.param);
  }
  throw err;
}

// The embedder's gRPC statuses as REST answers; its messages already name the field (`images[3]`).
const GRPC_TO_HTTP: Partial<Record<grpcStatus, [number, ApiError['code']]>> = {
  [grpcStatus.INVALID_ARGUMENT]: [400, 'invalid_parameter'],
  [grpcStatus.NOT_FOUND]: [404, 'not_found'],
  [grpcStatus.RESOURCE_EXHAUSTED]: [413, 'payload_too_large'],
  [grpcStatus.UNAUTHENTICATED]: [401, 'unauthorized'],
  [grpcStatus.UNAVAILABLE]: [503, 'embedder_unavailable'],
  [grpcStatus.DEADLINE_EXCEEDED]: [504, 'deadline_exceeded'],
};

function fromGrpcError(err: ServiceError): never {
  const mapped = GRPC_TO_HTTP[err.code];
  if (!mapped) throw err;
  const param = /images\[(\d+)\]/.exec(err.details)?.[1];
  throw new ApiError(mapped[0], mapped[1], err.details, param !== undefined ? `images.${param}` : null);
}

/**
 * Promotion and listing read and write Postgres (libs/models, shared with the embedder); embeddings
 * are computed by an embedder over gRPC, so the API process never loads a model.
 */
export function createModelService(deps: { db: Db; embedder: EmbeddingClient | null; embedTimeoutMs: number }) {
  return {
    /** Aliases belong to the checkpoint's project: an admin promoting another project's checkpoint sets that project's alias. */
    async promote(principal: Principal, req: { checkpoint_id: string; alias: string }): Promise<ModelResource> {
      const scope = actScope(principal);
      const projectId =
        scope ?? (await deps.db.checkpoint.findUnique({ where: { id: req.checkpoint_id }, select: { projectId: true } }))?.projectId;
      if (projectId === undefined) throw new ApiError(404, 'not_found', `no checkpoint ${req.checkpoint_id}`, 'checkpoint_id');
      const model = await promoteModel(deps.db, { projectId, alias: req.alias, checkpointId: req.checkpoint_id }).catch(fromModelError);
      return toModelResource(model);
    },

    /** `projectId` undefined: every project's (admin keys). */
    async list(projectId: string | undefined): Promise<ModelResource[]> {
      return (await listModels(deps.db, projectId)).map(toModelResource);
    },

    async embed(apiKey: string, req: EmbeddingsRequest): Promise<EmbeddingsResponse> {
      if (!deps.embedder) throw new ApiError(503, 'embedder_unavailable', 'no embedder is configured (EMBEDDER_URL)');
      const output = req.output ?? 'backbone';
      const res = await deps.embedder
        .embed(
          {
            ...(req.model_id ? { modelId: req.model_id } : { alias: req.model ?? '' }),
            images: req.images.map((b) => Buffer.from(b, 'base64')),
            output: output === 'head' ? 'OUTPUT_HEAD' : 'OUTPUT_BACKBONE',
            normalize: req.normalize ?? true,
          },
          // The caller's own key: the embedder resolves models in the caller's project.
          { apiKey, deadline: Date.now() + deps.embedTimeoutMs },
        )
        .catch(fromGrpcError);
      return {
        model_id: res.modelId,
        alias: res.alias || null,
        embedding_space_id: res.embeddingSpaceId,
        output,
        normalized: res.normalized,
        dim: res.dim,
        data: unpackVectors(res).map((v) => Array.from(v)),
      };
    },
  };
}
