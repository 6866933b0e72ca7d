import { z } from 'zod';

// Per-job options of the evaluation loop (issue 15): when to stop early, and when a run has collapsed.

/** The metrics an evaluation reports, either of which can pick the best checkpoint and stop a job early. */
export const EVALUATION_METRICS = ['knn_accuracy', 'probe_accuracy'] as const;

export const EarlyStopping = z
  .object({
    metric: z.enum(EVALUATION_METRICS).default('knn_accuracy').describe('the evaluation that picks the best checkpoint'),
    patience: z.number().int().min(1).max(1000).describe('evaluations (one per epoch) without an improvement before the job stops'),
    min_delta: z.number().min(0).max(1).default(0).describe('an improvement is a gain above this'),
  })
  .strict()
  .meta({ id: 'EarlyStopping' })
  .describe('stop when the evaluation has not improved for `patience` epochs; needs a labelled eval_dataset_id. The job ends succeeded with an early_stopped event');
export type EarlyStopping = z.infer<typeof EarlyStopping>;

export const CollapseGuard = z
  .object({
    min_feature_std: z
      .number()
      .gt(0)
      .max(1)
      .describe('feature_std (std of the L2-normalised query features; healthy is near 1/sqrt(dim)) below which a step counts as collapsed'),
    steps: z.number().int().min(1).max(1_000_000).default(50).describe('consecutive collapsed steps that abort the job'),
  })
  .strict()
  .meta({ id: 'CollapseGuard' })
  .describe('abort the job (failed, with a collapsed event) once feature_std stays below min_feature_std for `steps` steps');
export type CollapseGuard = z.infer<typeof CollapseGuard>;
