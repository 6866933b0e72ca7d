export { startEmbedder, type Embedder, type EmbedderConfig, type EmbedderDeps } from './server.js';
export type { BatchStats } from './batcher.js';
