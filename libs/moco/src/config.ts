/** Every knob of a MoCo model and its optimisation. Defaults: the CIFAR-10 demo recipe (small data). */
export type Arch = 'resnet18' | 'resnet34' | 'resnet50';
export type Stem = 'cifar' | 'imagenet';
export type HeadKind = 'v1' | 'v2';
export type Schedule = { kind: 'cosine' } | { kind: 'step'; milestones: readonly number[]; gamma: number };

export interface EncoderConfig {
  arch: Arch;
  stem: Stem;
  /** Channels of the first stage (64 in the standard ResNet); the later stages double it. */
  width: number;
  inChannels: 1 | 3;
  head: HeadKind;
  /** Output dimension of the projection head (the contrastive feature). */
  dim: number;
  /** PyTorch-style BN momentum (weight of the new batch statistic) and epsilon. */
  bnMomentum: number;
  bnEps: number;
}

export interface MocoConfig extends EncoderConfig {
  /** Queue length (number of negatives). */
  K: number;
  /** Key encoder momentum. */
  m: number;
  /** Softmax temperature. */
  T: number;
  /** Sub-batches with their own BN statistics, keys shuffled across them (single-device shuffle-BN). */
  bnSplits: number;
  symmetric: boolean;
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule: Schedule;
  epochs: number;
  batchSize: number;
}

export const cifarDemoDefaults: MocoConfig = {
  arch: 'resnet18',
  stem: 'cifar',
  width: 64,
  inChannels: 3,
  head: 'v1',
  dim: 128,
  bnMomentum: 0.1,
  bnEps: 1e-5,
  K: 4096,
  m: 0.99,
  T: 0.1,
  bnSplits: 8,
  symmetric: false,
  lr: 0.06,
  momentum: 0.9,
  weightDecay: 5e-4,
  schedule: { kind: 'cosine' },
  epochs: 200,
  batchSize: 512,
};

/** MoCo v2 on ImageNet-sized images (He et al. 2020, Chen et al. 2020). */
export const imagenetV2Defaults: MocoConfig = {
  ...cifarDemoDefaults,
  arch: 'resnet50',
  stem: 'imagenet',
  head: 'v2',
  K: 65536,
  m: 0.999,
  T: 0.2,
  bnSplits: 1,
  lr: 0.03,
  weightDecay: 1e-4,
  batchSize: 256,
};

/** Problems with a config, each naming the field; empty when the config is usable. */
export function checkConfig(c: MocoConfig): { field: string; message: string }[] {
  const problems: { field: string; message: string }[] = [];
  const need = (ok: boolean, field: string, message: string) => {
    if (!ok) problems.push({ field, message });
  };
  need(Number.isInteger(c.width) && c.width >= 1, 'width', 'must be a positive integer');
  need(Number.isInteger(c.dim) && c.dim >= 1, 'dim', 'must be a positive integer');
  need(Number.isInteger(c.K) && c.K >= 1, 'K', 'must be a positive integer');
  need(c.m >= 0 && c.m < 1, 'm', 'must be in [0, 1)');
  need(c.T > 0, 'T', 'must be positive');
  need(Number.isInteger(c.bnSplits) && c.bnSplits >= 1, 'bn_splits', 'must be a positive integer');
  need(Number.isInteger(c.batchSize) && c.batchSize >= 2, 'batch_size', 'must be an integer >= 2');
  const keysPerStep = c.symmetric ? 2 * c.batchSize : c.batchSize;
  need(c.K >= keysPerStep, 'K', `must be at least the keys enqueued per step (${keysPerStep})`);
  need(c.batchSize % c.bnSplits === 0, 'bn_splits', `must divide batch_size (${c.batchSize})`);
  need(c.lr > 0, 'lr', 'must be positive');
  need(c.momentum >= 0 && c.momentum < 1, 'momentum', 'must be in [0, 1)');
  need(c.weightDecay >= 0, 'weight_decay', 'must be >= 0');
  need(Number.isInteger(c.epochs) && c.epochs >= 1, 'epochs', 'must be a positive integer');
  need(c.bnMomentum > 0 && c.bnMomentum <= 1, 'bn_momentum', 'must be in (0, 1]');
  need(c.bnEps > 0, 'bn_eps', 'must be positive');
  return problems;
}
