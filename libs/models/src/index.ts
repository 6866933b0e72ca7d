export {
  CheckpointEncoder,
  CheckpointTransform,
  DEFAULT_ALIAS,
  embeddingSpaceId,
  listModels,
  MODEL_UPDATES_CHANNEL,
  ModelError,
  parseModelUpdate,
  promoteModel,
  resolveModel,
  type Model,
  type ModelUpdate,
} from './models.js';
export { listenModelUpdates, type ModelUpdateListener } from './model-updates.js';
export * from './embedding.js';
