import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import type {
  ApiKey,
  Checkpoint,
  CreateApiKeyRequest,
  CreatedApiKey,
  CreatedJob,
  CreateJobRequest,
  Dataset,
  DatasetSamples,
  EmbeddingsRequest,
  EmbeddingsResponse,
  Job,
  JobEvent,
  JobPreview,
  JobStatusValue,
  MetricsResponse,
  Model,
  Page,
  Project,
  PromoteModelRequest,
  QueueDepth,
  QueueHealth,
  RegisterDatasetRequest,
  RotatedApiKey,
} from '@moco/contracts';
import { downloadToFile, openDownload, openExport, type ExportOptions } from './downloads.js';
import { isTerminalEvent, isTerminalStatus, jobStream, type JobStreamItem } from './event-stream.js';
import { GrpcEmbedder, type EmbedOptions, type Embeddings } from './grpc-embedder.js';
import { Http, type RequestOptions } from './http.js';

export interface MocoClientOptions {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  apiKey: string;
  /** Per request attempt, ms (default 60 s; uploads and streams are not timed out). */
  timeoutMs?: number;
  /**
   * Retries after network errors, 5xx and 429 (default 3). Creates are safe to retry: they carry an
   * idempotency key. A 429 is retried for any request that can be sent again, after its Retry-After.
   */
  maxRetries?: number;
  retryDelayMs?: number;
  /** host:port of an embedder, for `embeddings.embed` over gRPC. */
  grpcAddress?: string;
}

type Call = { signal?: AbortSignal };

/** Pages of a list endpoint, fetched as the iteration needs them. */
async function* paginate<T>(http: Http, path: string, query: RequestOptions['query'], signal?: AbortSignal): AsyncGenerator<T> {
  let after: string | undefined;
  do {
    const page = await http.json<Page<T>>(path, { query: { ...query, after }, signal });
    yield* page.data;
    after = page.has_more ? (page.next_cursor ?? undefined) : undefined;
  } while (after);
}

/** A typed client of the MoCo training service's REST API. */
export class MocoClient {
  private readonly http: Http;
  private readonly grpc: GrpcEmbedder | null;

  constructor(opts: MocoClientOptions) {
    this.grpc = opts.grpcAddress ? new GrpcEmbedder(opts.grpcAddress, opts.apiKey, opts.maxRetries ?? 3) : null;
    this.http = new Http({
      baseUrl: opts.baseUrl,
      apiKey: opts.apiKey,
      timeoutMs: opts.timeoutMs ?? 60_000,
      maxRetries: opts.maxRetries ?? 3,
      retryDelayMs: opts.retryDelayMs ?? 250,
    });
  }

  readonly datasets = {
    /**
     * Uploads a dataset file (tar, tar.gz, zip, idx) from a path, bytes or a stream; the API validates
     * it before answering. From a path or bytes the upload is retried on network errors; a stream cannot be.
     */
    upload: async (
      source: string | Uint8Array | Readable,
      opts: Call & { name?: string; filename?: string; onProgress?: (sentBytes: number, totalBytes?: number) => void } = {},
    ): Promise<Dataset> => {
      const total = typeof source === 'string' ? (await stat(source)).size : source instanceof Uint8Array ? source.byteLength : undefined;
      const filename = opts.filename ?? (typeof source === 'string' ? basename(source).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[._-]+/, '') : undefined);
      const body = () => {
        const stream = typeof source === 'string' ? createReadStream(source) : source instanceof Uint8Array ? Readable.from([source]) : source;
        let sent = 0;
        stream.on('data', (chunk: Buffer) => opts.onProgress?.((sent += chunk.length), total));
        return Readable.toWeb(stream) as unknown as ReadableStream;
      };
      return this.http.json<Dataset>('/v1/datasets', {
        method: 'POST',
        query: { name: opts.name, filename: filename || undefined },
        headers: { 'content-type': 'application/octet-stream', ...(total !== undefined ? { 'content-length': String(total) } : {}) },
        body,
        retry: !(source instanceof Readable),
        timeoutMs: 0,
        signal: opts.signal,
      });
    },
    /** Registers an object already in the service's S3 (`s3://bucket/key`), validated in place. */
    register: (req: RegisterDatasetRequest, opts: Call = {}) =>
      this.http.json<Dataset>('/v1/datasets', { method: 'POST', json: req, retry: false, timeoutMs: 0, signal: opts.signal }),
    get: (id: string, opts: Call = {}) => this.http.json<Dataset>(`/v1/datasets/${encodeURIComponent(id)}`, opts),
    list: (opts: Call & { pageSize?: number } = {}) => paginate<Dataset>(this.http, '/v1/datasets', { limit: opts.pageSize }, opts.signal),
    /** PNG thumbnails (base64) of `n` of its images, classes in turn. */
    samples: (id: string, opts: Call & { n?: number } = {}) =>
      this.http.json<DatasetSamples>(`/v1/datasets/${encodeURIComponent(id)}/samples`, { query: { n: opts.n }, signal: opts.signal }),
    /** An uploaded dataset's file, as a stream with its size and checksum. */
    download: (id: string, opts: Call = {}) =>
      openDownload(this.http, `/v1/datasets/${encodeURIComponent(id)}/download`, { fallbackName: id, signal: opts.signal }),
    /** The same, written to `path` (atomically, the checksum verified). */
    downloadToFile: (id: string, path: string, opts: Call = {}) =>
      downloadToFile(() => this.datasets.download(id, opts), `dataset ${id}`, path),
  };

  readonly jobs = {
    /**
     * Creates a job; a random Idempotency-Key is sent unless given, so retries never create two.
     * `warnings` lists settings known to train badly (the job is created anyway).
     */
    create: (req: CreateJobRequest, opts: Call & { idempotencyKey?: string } = {}) =>
      this.http.json<CreatedJob>('/v1/jobs', {
        method: 'POST',
        json: req,
        headers: { 'idempotency-key': opts.idempotencyKey ?? randomUUID() },
        retry: true,
        signal: opts.signal,
      }),
    /** What create would make of `req` (the resolved hyperparameters, the steps), without creating it; a bad request is the same ApiError. */
    preview: (req: CreateJobRequest, opts: Call = {}) =>
      this.http.json<JobPreview>('/v1/jobs/preview', { method: 'POST', json: req, retry: true, signal: opts.signal }),
    get: (id: string, opts: Call = {}) => this.http.json<Job>(`/v1/jobs/${encodeURIComponent(id)}`, opts),
    list: (opts: Call & { status?: JobStatusValue[]; metadata?: Record<string, string>; pageSize?: number } = {}) =>
      paginate<Job>(
        this.http,
        '/v1/jobs',
        {
          limit: opts.pageSize,
          status: opts.status?.join(','),
          ...Object.fromEntries(Object.entries(opts.metadata ?? {}).map(([k, v]) => [`metadata.${k}`, v])),
        },
        opts.signal,
      ),
    /** Cancelling is idempotent, so it is retried like a read. */
    cancel: (id: string, opts: Call = {}) =>
      this.http.json<Job>(`/v1/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST', retry: true, signal: opts.signal }),
    /** Live events and new metric points until the job ends (Server-Sent Events, resumed after drops). */
    events: (id: string, opts: Call & { after?: number; metricsAfterStep?: number } = {}): AsyncGenerator<JobStreamItem> =>
      jobStream(this.http, id, opts),
    eventPage: (id: string, opts: Call & { after?: number; limit?: number } = {}) =>
      this.http.json<Page<JobEvent>>(`/v1/jobs/${encodeURIComponent(id)}/events`, {
        query: { after: opts.after, limit: opts.limit },
        signal: opts.signal,
      }),
    metrics: (id: string, opts: Call & { names?: string[]; fromStep?: number; toStep?: number; limit?: number } = {}) =>
      this.http.json<MetricsResponse>(`/v1/jobs/${encodeURIComponent(id)}/metrics`, {
        query: { name: opts.names?.join(','), from_step: opts.fromStep, to_step: opts.toStep, limit: opts.limit },
        signal: opts.signal,
      }),
    checkpoints: (id: string, opts: Call = {}) =>
      paginate<Checkpoint>(this.http, `/v1/jobs/${encodeURIComponent(id)}/checkpoints`, {}, opts.signal),
    /** Follows the live stream until the job is succeeded, failed or cancelled, then returns it. */
    wait: async (id: string, opts: Call & { onItem?: (item: JobStreamItem) => void } = {}): Promise<Job> => {
      const job = await this.jobs.get(id, opts);
      if (isTerminalStatus(job.status)) return job;
      for await (const item of this.jobs.events(id, { signal: opts.signal })) {
        opts.onItem?.(item);
        if (item.kind === 'event' && isTerminalEvent(item.event)) break;
      }
      return this.jobs.get(id, opts);
    },
  };

  readonly checkpoints = {
    /** A checkpoint as ONNX, PyTorch or the training state, as a stream with its size and checksum. */
    export: (id: string, opts: ExportOptions = {}) => openExport(this.http, id, opts),
    /** The same, written to `path` (atomically, the checksum verified). */
    exportToFile: (id: string, path: string, opts: ExportOptions = {}) =>
      downloadToFile(() => openExport(this.http, id, opts), `checkpoint ${id} export`, path),
  };

  readonly models = {
    /**
     * Points an alias at a checkpoint and answers the model (its `id` pins it in Embed calls).
     * Embedders switch to it without a restart, once it is loaded; with `waitUntilServed` (needs
     * `grpcAddress`) this resolves only once the embedder answers the alias with it.
     */
    promote: async (req: PromoteModelRequest, opts: Call & { waitUntilServed?: boolean; timeoutMs?: number } = {}): Promise<Model> => {
      if (opts.waitUntilServed && !this.grpc) throw new Error('models.promote with waitUntilServed needs the client option grpcAddress');
      const model = await this.http.json<Model>('/v1/models', { method: 'POST', json: req, retry: true, signal: opts.signal });
      if (opts.waitUntilServed) await this.grpc!.waitUntilServed(req.alias, model, opts);
      return model;
    },
    list: async (opts: Call = {}) => (await this.http.json<{ data: Model[] }>('/v1/models', opts)).data,
  };

  readonly embeddings = {
    /**
     * Embeds encoded images (PNG/JPEG) over gRPC (needs `grpcAddress`), in batches of `batchSize`
     * sent concurrently. Throws if the alias moved between batches, so vectors from two models are
     * never returned together.
     */
    embed: (images: Uint8Array[], opts: EmbedOptions = {}): Promise<Embeddings> => {
      if (!this.grpc) throw new Error('embeddings.embed needs the client option grpcAddress (host:port of an embedder)');
      return this.grpc.embed(images, opts);
    },
    /** The REST mirror (POST /v1/embeddings): images as base64 in JSON; for callers without gRPC. */
    create: (req: EmbeddingsRequest, opts: Call = {}) =>
      this.http.json<EmbeddingsResponse>('/v1/embeddings', { method: 'POST', json: req, retry: true, signal: opts.signal }),
  };

  /** Unauthenticated probes. */
  readonly health = {
    live: (opts: Call = {}) => this.http.json<{ status: 'ok' }>('/healthz', opts),
    /** Postgres, Redis and the object store answer; a 503 (one does not) is thrown as MocoApiError. */
    ready: (opts: Call = {}) => this.http.json<{ status: string; checks: Record<string, string> }>('/readyz', opts),
    /** Training messages that need a worker (what the autoscaler reads). */
    queueDepth: (opts: Call = {}) => this.http.json<QueueDepth>('/queue-depth', opts),
  };

  /** Operator routes: they need an admin key (others get 403 `forbidden`). */
  readonly admin = {
    /** Training queue health: message counts and connected workers. */
    queue: (opts: Call = {}) => this.http.json<QueueHealth>('/v1/admin/queue', opts),
    projects: async (opts: Call = {}) => (await this.http.json<{ data: Project[] }>('/v1/admin/projects', opts)).data,
    keys: {
      /** The answer holds the secret, the only time it is shown. Not retried (but on 429): a retry would make a second key. */
      create: (req: CreateApiKeyRequest, opts: Call = {}) =>
        this.http.json<CreatedApiKey>('/v1/admin/keys', { method: 'POST', json: req, signal: opts.signal }),
      /** Newest first; prefixes only, never secrets. */
      list: (opts: Call & { projectId?: string; pageSize?: number } = {}) =>
        paginate<ApiKey>(this.http, '/v1/admin/keys', { project_id: opts.projectId, limit: opts.pageSize }, opts.signal),
      /** Revoking is idempotent, so it is retried like a read. */
      revoke: (id: string, opts: Call = {}) =>
        this.http.json<ApiKey>(`/v1/admin/keys/${encodeURIComponent(id)}/revoke`, { method: 'POST', retry: true, signal: opts.signal }),
      /**
       * A new secret for the key's project, name and role; the old key is revoked, or expires after
       * `gracePeriodS`. Not retried (but on 429): a retry after a lost answer would find the old key revoked.
       */
      rotate: (id: string, opts: Call & { gracePeriodS?: number } = {}) =>
        this.http.json<RotatedApiKey>(`/v1/admin/keys/${encodeURIComponent(id)}/rotate`, {
          method: 'POST',
          json: { grace_period_s: opts.gracePeriodS ?? 0 },
          signal: opts.signal,
        }),
    },
  };

  /** Closes the gRPC channel, if one was opened. */
  close(): void {
    this.grpc?.close();
  }
}
