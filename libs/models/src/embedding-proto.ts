import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * The proto/ folder, found from this file so any working directory works: the repository's (also
 * in the compiled tree), or the one shipped beside the bundle of the @moco/sdk package (dist/../proto).
 */
export const PROTO_DIR = ['../proto', '../../../proto']
  .map((relative) => fileURLToPath(new URL(relative, import.meta.url)))
  .find((dir) => existsSync(`${dir}/moco/v1/embedding.proto`))!;
export const EMBEDDING_PROTO = 'moco/v1/embedding.proto';
export const EMBEDDING_SERVICE = 'moco.v1.EmbeddingService';

/**
 * Loads proto/moco/v1/embedding.proto (plus `extraFiles`, absolute paths) as server and clients
 * share it: camelCase fields, enums as their names, defaults filled in, `oneofs` naming the set member.
 */
export function loadEmbeddingProto(extraFiles: string[] = []): protoLoader.PackageDefinition {
  return protoLoader.loadSync([EMBEDDING_PROTO, ...extraFiles], {
    includeDirs: [PROTO_DIR],
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
}

export function embeddingServiceDefinition(pkg: protoLoader.PackageDefinition): grpc.ServiceDefinition {
  return pkg[EMBEDDING_SERVICE] as grpc.ServiceDefinition;
}

// Message types as proto-loader presents them with the options above.

export type Output = 'OUTPUT_UNSPECIFIED' | 'OUTPUT_BACKBONE' | 'OUTPUT_HEAD';

export interface TensorInput {
  /** [N, H, W, C] */
  shape: number[];
  /** N*H*W*C little-endian float32 */
  data: Uint8Array;
  /** true: already the model input; false: pixels in [0, 255] that the evaluation transform is applied to. */
  preprocessed?: boolean;
}

export interface ModelSelector {
  alias?: string;
  modelId?: string;
  /** Set by the decoder on received messages: which of alias / modelId was sent. */
  model?: 'alias' | 'modelId';
}

export interface EmbedRequest extends ModelSelector {
  images?: Uint8Array[];
  tensor?: TensorInput | null;
  output?: Output;
  normalize?: boolean;
  requestId?: string;
}

export interface EmbedResponse {
  vectors: Buffer;
  count: number;
  dim: number;
  modelId: string;
  alias: string;
  embeddingSpaceId: string;
  output: Output;
  normalized: boolean;
  requestId: string;
}

export interface ModelMessage {
  id: string;
  embeddingSpaceId: string;
  aliases: string[];
  jobId: string;
  step: number;
  epoch: number;
  final: boolean;
  transform: { size: number; channels: number; mean: number[]; std: number[] };
  encoder: { arch: string; stem: string; width: number; inChannels: number; head: string; dim: number };
  backboneDim: number;
  headDim: number;
  createdAt: string;
}

export interface ListModelsResponse {
  models: ModelMessage[];
}

/** An EmbedResponse's vectors, one Float32Array (a copy, so always aligned) per image. */
export function unpackVectors(response: Pick<EmbedResponse, 'vectors' | 'count' | 'dim'>): Float32Array[] {
  const all = new Float32Array(new Uint8Array(response.vectors).buffer);
  return Array.from({ length: response.count }, (_, i) => all.subarray(i * response.dim, (i + 1) * response.dim));
}
