import { z } from 'zod';
import { Timestamp } from './rest-common.js';

// Models are promoted checkpoints; embeddings are the REST mirror of gRPC moco.v1.EmbeddingService/Embed.

export const PromoteModelRequest = z
  .object({
    checkpoint_id: z.string().min(1).describe("any checkpoint of the project, e.g. a job's best_checkpoint_id (its best evaluation)"),
    alias: z.string().min(1).max(63).describe('e.g. production, staging: 1-63 of a-z, 0-9, ".", "_", "-"'),
  })
  .strict()
  .meta({ id: 'PromoteModelRequest' });
export type PromoteModelRequest = z.infer<typeof PromoteModelRequest>;

export const Model = z
  .object({
    id: z.string().describe('the checkpoint id'),
    project_id: z.string(),
    embedding_space_id: z.string().describe('names the training state behind the vectors: never compare vectors of different ids'),
    aliases: z.array(z.string()),
    job_id: z.string(),
    step: z.number().int(),
    epoch: z.number().int(),
    final: z.boolean(),
    metrics: z.record(z.string(), z.unknown()),
    transform: z.object({ size: z.number().int(), channels: z.number().int(), mean: z.array(z.number()), std: z.array(z.number()) }),
    encoder: z.record(z.string(), z.unknown()),
    created_at: Timestamp,
  })
  .meta({ id: 'Model' });
export type Model = z.infer<typeof Model>;

export const ModelList = z.object({ data: z.array(Model) });

export const ListModelsQuery = z.object({
  project_id: z.string().optional().describe('admin keys only: one project (default: every project)'),
});

export const EMBED_OUTPUTS = ['backbone', 'head'] as const;

export const EmbeddingsRequest = z
  .object({
    images: z.array(z.base64()).min(1).describe('PNG or JPEG files, base64'),
    model: z.string().min(1).optional().describe('alias (default production)'),
    model_id: z.string().min(1).optional().describe('pin an exact model (checkpoint id) instead of an alias'),
    output: z.enum(EMBED_OUTPUTS).default('backbone').describe('backbone features (for kNN, probes) or the projection head'),
    normalize: z.boolean().default(true).describe('L2-normalise each vector'),
  })
  .strict()
  .refine((r) => !(r.model && r.model_id), { message: 'give model or model_id, not both', path: ['model_id'] })
  .meta({ id: 'EmbeddingsRequest' });
export type EmbeddingsRequest = z.input<typeof EmbeddingsRequest>;

export const EmbeddingsResponse = z
  .object({
    model_id: z.string(),
    alias: z.string().nullable(),
    embedding_space_id: z.string(),
    output: z.enum(EMBED_OUTPUTS),
    normalized: z.boolean(),
    dim: z.number().int(),
    data: z.array(z.array(z.number())).describe('one vector per image, in order'),
  })
  .meta({ id: 'EmbeddingsResponse' });
export type EmbeddingsResponse = z.infer<typeof EmbeddingsResponse>;
