export { MocoClient, type MocoClientOptions } from './client.js';
export { MocoApiError, MocoConnectionError } from './errors.js';
export { isTerminalEvent, type JobStreamItem } from './event-stream.js';
export type { EmbedOptions, Embeddings } from './grpc-embedder.js';
export { OPERATIONS } from './operations.js';
export type { Download, ExportOptions } from './downloads.js';
