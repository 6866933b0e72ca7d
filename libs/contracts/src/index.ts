export {
  DATASET_RULE,
  Hyperparameters,
  hyperparameterWarnings,
  HyperparametersInput,
  resolveHyperparameters,
  SMALL_IMAGE_MAX,
  toMocoConfig,
  totalSteps,
  type DatasetShape,
  type FieldProblem,
  type ResolvedHyperparameters,
} from './hyperparameters.js';
export * from './rest-admin.js';
export * from './rest-common.js';
export * from './rest-datasets.js';
export * from './rest-jobs.js';
export * from './rest-models.js';
export * from './dataset-validation.js';
export * from './rest-checkpoints.js';
export * from './checkpoint-metadata.js';
export * from './job-options.js';
export * from './trainer-messages.js';
