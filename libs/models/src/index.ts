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
export {
  EMBEDDING_PROTO,
  EMBEDDING_SERVICE,
  embeddingServiceDefinition,
  loadEmbeddingProto,
  PROTO_DIR,
  unpackVectors,
  type EmbedRequest,
  type EmbedResponse,
  type ListModelsResponse,
  type ModelMessage,
  type ModelSelector,
  type Output,
  type TensorInput,
} from './embedding-proto.js';
export { createEmbeddingClient, type EmbedCallOptions, type EmbeddingClient } from './embedding-client.js';
