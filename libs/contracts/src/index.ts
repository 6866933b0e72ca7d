export {
  Hyperparameters,
  HyperparametersInput,
  resolveHyperparameters,
  SMALL_IMAGE_MAX,
  toMocoConfig,
  totalSteps,
  type DatasetShape,
  type FieldProblem,
  type ResolvedHyperparameters,
} from './hyperparameters.js';
