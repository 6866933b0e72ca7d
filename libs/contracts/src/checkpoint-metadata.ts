import { z } from 'zod';

// What a checkpoint row records beside its bytes, written by the worker and read by the API (REST
// resources, exports) and the embedder (serving): one declaration for all of them.

/** checkpoints.transform: the evaluation transform, which serving applies to every image. */
export const CheckpointTransform = z
  .object({
    size: z.number().int().positive(),
    channels: z.union([z.literal(1), z.literal(3)]),
    mean: z.array(z.number()),
    std: z.array(z.number().positive()),
  })
  .meta({ id: 'CheckpointTransform' });
export type CheckpointTransform = z.infer<typeof CheckpointTransform>;

/** checkpoints.encoder: the encoder's shape, readable without loading the weights. */
export const CheckpointEncoder = z
  .object({
    arch: z.enum(['resnet18', 'resnet34', 'resnet50']),
    stem: z.enum(['cifar', 'imagenet']),
    width: z.number().int().positive(),
    in_channels: z.union([z.literal(1), z.literal(3)]),
    head: z.enum(['v1', 'v2']),
    dim: z.number().int().positive(),
  })
  .meta({ id: 'CheckpointEncoder' });
export type CheckpointEncoder = z.infer<typeof CheckpointEncoder>;
