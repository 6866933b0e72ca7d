import { setTimeout as sleep } from 'node:timers/promises';
import { status, type ServiceError } from '@grpc/grpc-js';
import { createEmbeddingClient, unpackVectors, type EmbeddingClient, type EmbedResponse } from '@moco/models/embedding';

export interface EmbedOptions {
  /** Alias (default production) or, with `modelId`, an exact model. */
  model?: string;
  modelId?: string;
  output?: 'backbone' | 'head';
  /** L2-normalise each vector (default true). */
  normalize?: boolean;
  /** Images per gRPC call (default 64); calls run `concurrency` at a time (default 4). */
  batchSize?: number;
  concurrency?: number;
  /** Per call, ms (default 60 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface Embeddings {
  vectors: Float32Array[];
  dim: number;
  modelId: string;
  alias: string | null;
  embeddingSpaceId: string;
}

/** The embedder says "not now": worth another try. Everything else is the caller's to fix. */
const RETRIABLE = new Set<number>([status.UNAVAILABLE]);

export class GrpcEmbedder {
  private readonly client: EmbeddingClient;

  constructor(address: string, apiKey: string, private readonly maxRetries: number) {
    this.client = createEmbeddingClient(address, { apiKey });
  }

  async embed(images: Uint8Array[], opts: EmbedOptions): Promise<Embeddings> {
    const batchSize = opts.batchSize ?? 64;
    const batches: Uint8Array[][] = [];
    for (let i = 0; i < images.length; i += batchSize) batches.push(images.slice(i, i + batchSize));
    const responses: EmbedResponse[] = new Array(batches.length);
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const i = next++;
        responses[i] = await this.call(batches[i]!, opts);
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 4, batches.length) }, worker));
    const first = responses[0];
    if (!first) return { vectors: [], dim: 0, modelId: '', alias: opts.model ?? null, embeddingSpaceId: '' };
    const moved = responses.find((r) => r.embeddingSpaceId !== first.embeddingSpaceId);
    if (moved) {
      throw new Error(
        `the model changed during the call (${first.modelId} then ${moved.modelId}): embed again, or pin modelId`,
      );
    }
    return {
      vectors: responses.flatMap((r) => unpackVectors(r)),
      dim: first.dim,
      modelId: first.modelId,
      alias: first.alias || null,
      embeddingSpaceId: first.embeddingSpaceId,
    };
  }

  /**
   * Resolves once an Embed by `alias` is answered by model `modelId`: embedders move an alias only
   * after its new model is loaded, so right after a promotion the previous model may still answer.
   * Probes with one 1x1 pixel (resized by the model's transform), so it costs one tiny forward pass.
   */
  async waitUntilServed(alias: string, model: { id: string; transform: { channels: number } }, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    const channels = model.transform.channels;
    const probe = { alias, tensor: { shape: [1, 1, 1, channels], data: new Uint8Array(4 * channels) }, output: 'OUTPUT_BACKBONE' as const };
    const until = Date.now() + (opts.timeoutMs ?? 60_000);
    for (let attempt = 1; ; attempt++) {
      opts.signal?.throwIfAborted();
      const served = await this.client.embed(probe, { deadline: until }).catch((err: ServiceError) => {
        if (!RETRIABLE.has(err.code)) throw err;
        return null;
      });
      if (served?.modelId === model.id) return;
      if (Date.now() > until) {
        throw new Error(`the embedder still serves ${served?.modelId ?? 'nothing'} for alias ${alias}, not ${model.id}`);
      }
      await sleep(Math.min(100 * attempt, 1000), undefined, { signal: opts.signal });
    }
  }

  private async call(images: Uint8Array[], opts: EmbedOptions): Promise<EmbedResponse> {
    for (let attempt = 0; ; attempt++) {
      opts.signal?.throwIfAborted();
      try {
        return await this.client.embed(
          {
            ...(opts.modelId ? { modelId: opts.modelId } : { alias: opts.model ?? '' }),
            images,
            output: opts.output === 'head' ? 'OUTPUT_HEAD' : 'OUTPUT_BACKBONE',
            normalize: opts.normalize ?? true,
          },
          { deadline: Date.now() + (opts.timeoutMs ?? 60_000) },
        );
      } catch (err) {
        if (!RETRIABLE.has((err as ServiceError).code) || attempt >= this.maxRetries) throw err;
        await sleep(250 * 2 ** attempt, undefined, { signal: opts.signal });
      }
    }
  }

  close(): void {
    this.client.close();
  }
}
