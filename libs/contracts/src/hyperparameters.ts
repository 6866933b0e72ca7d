// The configuration entry point of @moco/moco: its recipes and checks, without loading TensorFlow.js.
import { checkConfig, cifarDemoDefaults, imagenetV2Defaults, type MocoConfig } from '@moco/moco/config';
import { z } from 'zod';

// The MoCo knobs a job accepts, in the API's snake_case. Every field is optional: what is left out
// comes from the published recipe that fits the dataset's image size (resolveHyperparameters).

export const Hyperparameters = z
  .object({
    encoder: z.enum(['resnet18', 'resnet34', 'resnet50']),
    stem: z.enum(['cifar', 'imagenet']).describe('cifar: 3x3 stride-1 conv, no max-pool (small images)'),
    width: z.number().int().min(1).max(256).describe('channels of the first stage (64 in a standard ResNet)'),
    head: z.enum(['v1', 'v2']).describe('v1: linear projection; v2: 2-layer MLP'),
    dim: z.number().int().min(2).max(4096).describe('feature dimension of the contrastive head'),
    K: z.number().int().min(1).max(1_048_576).describe('queue length (negatives)'),
    m: z.number().min(0).lt(1).describe('key encoder momentum'),
    T: z.number().gt(0).max(10).describe('softmax temperature'),
    batch_size: z.number().int().min(2).max(8192),
    lr: z.number().gt(0).max(100),
    momentum: z.number().min(0).lt(1).describe('SGD momentum'),
    weight_decay: z.number().min(0).max(1),
    schedule: z.enum(['cosine', 'step']),
    lr_milestones: z.array(z.number().int().min(1)).max(16).describe('epochs where a step schedule multiplies lr by lr_gamma'),
    lr_gamma: z.number().gt(0).max(1),
    epochs: z.number().int().min(1).max(10_000),
    augmentation: z.enum(['v1', 'v2', 'gray']),
    image_size: z.number().int().min(8).max(1024),
    bn_splits: z.number().int().min(1).max(256).describe('sub-batches with their own BN statistics (shuffle-BN)'),
    symmetric: z.boolean().describe('symmetric loss (both views as queries)'),
    knn_k: z.number().int().min(1).max(10_000).describe('neighbours of the kNN monitor'),
    knn_t: z.number().gt(0).max(10).describe('temperature of the kNN monitor'),
  })
  .strict();

export type ResolvedHyperparameters = z.infer<typeof Hyperparameters>;
export const HyperparametersInput = Hyperparameters.partial();
export type HyperparametersInput = z.infer<typeof HyperparametersInput>;

/** What the defaults and cross-checks need to know about the training dataset. */
export interface DatasetShape {
  height: number;
  width: number;
  channels: number;
  imageCount: number;
}

export interface FieldProblem {
  field: string;
  message: string;
}

/** Images up to this size get the CIFAR-10 demo recipe, larger ones ImageNet MoCo v2's. */
export const SMALL_IMAGE_MAX = 64;

function recipe(imageSize: number, channels: number): ResolvedHyperparameters {
  const base = imageSize <= SMALL_IMAGE_MAX ? cifarDemoDefaults : imagenetV2Defaults;
  return {
    encoder: base.arch,
    stem: base.stem,
    width: base.width,
    head: base.head,
    dim: base.dim,
    K: base.K,
    m: base.m,
    T: base.T,
    batch_size: base.batchSize,
    lr: base.lr,
    momentum: base.momentum,
    weight_decay: base.weightDecay,
    schedule: 'cosine',
    lr_milestones: [120, 160],
    lr_gamma: 0.1,
    epochs: base.epochs,
    augmentation: channels === 1 ? 'gray' : 'v2',
    image_size: imageSize,
    // One device: shuffle-BN needs sub-batches, whatever the recipe used on 8 GPUs.
    bn_splits: 8,
    symmetric: false,
    knn_k: 200,
    knn_t: 0.1,
  };
}

/** Steps are counted in 32-bit integer columns (job progress, checkpoints, metrics). */
export const MAX_TOTAL_STEPS = 2 ** 31 - 1;

/** Smallest input each stem can take: the stem and four stages downsample 8x (cifar) or 32x (imagenet). */
const MIN_IMAGE_SIZE = { cifar: 8, imagenet: 32 } as const;

/**
 * Fills the defaults from the recipe for the dataset's image size and cross-checks the result:
 * K against batch, bn_splits against batch, image size against the stem, batch against the
 * dataset. Problems name the field as the client spelled it (`hyperparameters.K`).
 */
export function resolveHyperparameters(
  input: HyperparametersInput,
  dataset: DatasetShape,
): { value: ResolvedHyperparameters; problems: FieldProblem[] } {
  const imageSize = input.image_size ?? Math.max(dataset.height, dataset.width);
  const value: ResolvedHyperparameters = { ...recipe(imageSize, dataset.channels), ...input };
  const problems: FieldProblem[] = checkConfig(toMocoConfig(value, dataset.channels)).map((p) => ({
    field: `hyperparameters.${p.field}`,
    message: p.message,
  }));
  const need = (ok: boolean, field: string, message: string) => {
    if (!ok) problems.push({ field: `hyperparameters.${field}`, message });
  };
  need(
    value.image_size >= MIN_IMAGE_SIZE[value.stem],
    'image_size',
    `must be at least ${MIN_IMAGE_SIZE[value.stem]} for the ${value.stem} stem`,
  );
  need(value.batch_size <= dataset.imageCount, 'batch_size', `must not exceed the dataset's ${dataset.imageCount} images`);
  need(dataset.channels === 1 || value.augmentation !== 'gray', 'augmentation', 'gray is for 1-channel images');
  need(dataset.channels === 3 || value.augmentation === 'gray', 'augmentation', 'must be gray for 1-channel images');
  need(
    totalSteps(value, dataset.imageCount) <= MAX_TOTAL_STEPS,
    'epochs',
    `makes ${totalSteps(value, dataset.imageCount)} steps with this batch size and dataset; at most ${MAX_TOTAL_STEPS}`,
  );
  need(
    value.schedule !== 'step' || value.lr_milestones.every((e, i, a) => e <= value.epochs && (i === 0 || e > a[i - 1]!)),
    'lr_milestones',
    'must be increasing epochs no later than epochs',
  );
  return { value, problems };
}

export function toMocoConfig(h: ResolvedHyperparameters, channels: number): MocoConfig {
  return {
    arch: h.encoder,
    stem: h.stem,
    width: h.width,
    inChannels: channels === 1 ? 1 : 3,
    head: h.head,
    dim: h.dim,
    bnMomentum: 0.1,
    bnEps: 1e-5,
    K: h.K,
    m: h.m,
    T: h.T,
    bnSplits: h.bn_splits,
    symmetric: h.symmetric,
    lr: h.lr,
    momentum: h.momentum,
    weightDecay: h.weight_decay,
    schedule: h.schedule === 'cosine' ? { kind: 'cosine' } : { kind: 'step', milestones: h.lr_milestones, gamma: h.lr_gamma },
    epochs: h.epochs,
    batchSize: h.batch_size,
  };
}

/** Steps of a whole run: the trainer drops an epoch's last short batch (batch_size <= images is checked). */
export function totalSteps(h: ResolvedHyperparameters, imageCount: number): number {
  return h.epochs * Math.floor(imageCount / h.batch_size);
}
