// `@moco/models/embedding`: the gRPC embedding client and its message types alone, for clients (the
// SDK) that must not load the database side of this package (Prisma, pg).
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
