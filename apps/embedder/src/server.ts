import type { Http2SecureServer, Http2Server, Http2Session } from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import type { embedderEnv } from '@moco/config';
import { ApiKeyCache, watchApiKeyChanges, type Db } from '@moco/db';
import {
  EMBEDDING_SERVICE,
  embeddingServiceDefinition,
  listenModelUpdates,
  listModels,
  loadEmbeddingProto,
  resolveModel,
  type EmbedRequest,
  type EmbedResponse,
  type Model,
  type ModelMessage,
  type ModelSelector,
} from '@moco/models';
import { resnetPlan } from '@moco/moco';
import type { ObjectStore } from '@moco/storage';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { ApiKeyAuth } from './auth.js';
import { MicroBatcher, type BatchStats } from './batcher.js';
import { DecodeBudget } from './decode-budget.js';
import { noEmbedderMetrics, type EmbedderMetrics } from './embedder-metrics.js';
import { shortDetails, toServiceError } from './errors.js';
import { ForwardThread } from './forward-thread.js';
import { ModelRegistry } from './model-registry.js';
import { checkFiniteVectors, imageCount, preprocess } from './preprocess.js';
import { parsed, withTolerantDecoding } from './unparsable.js';

export type EmbedderConfig = z.infer<z.ZodObject<typeof embedderEnv>>;

export interface EmbedderDeps {
  db: Db;
  /** For LISTEN, on a connection of its own. */
  databaseUrl: string;
  store: ObjectStore;
  log: Logger;
  /** Prometheus hooks (see embedder-metrics.ts); none by default. */
  metrics?: EmbedderMetrics;
}

export interface Embedder {
  /** host:port it listens on (the port chosen when EMBED_PORT is 0). */
  address: string;
  port: number;
  /** Forward passes and their sizes (micro-batching at work). */
  stats: BatchStats;
  /** The tfjs backend of the forward-pass thread. */
  readonly backend: string;
  readonly loadedModelIds: string[];
  /**
   * Graceful stop: health turns NOT_SERVING, after EMBED_DRAIN_DELAY_MS new calls are refused, calls
   * in flight finish (queued images run at once), and after EMBED_SHUTDOWN_TIMEOUT_S the rest are cut.
   */
  close(): Promise<void>;
}

// Requests of one EmbedStream being worked on at once; the stream is paused beyond.
const STREAM_WINDOW = 8;

interface CallContext {
  deadline: number;
  isCancelled: () => boolean;
}

function contextOf(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getDeadline' | 'cancelled'>): CallContext {
  const deadline = call.getDeadline();
  return { deadline: deadline instanceof Date ? deadline.getTime() : deadline, isCancelled: () => call.cancelled };
}

/** Serves moco.v1.EmbeddingService, grpc.health.v1.Health and server reflection; resolves once listening. */
export async function startEmbedder(config: EmbedderConfig, deps: EmbedderDeps): Promise<Embedder> {
  const { db, log, metrics = noEmbedderMetrics } = deps;
  const forward = await ForwardThread.start({ backend: config.EMBED_BACKEND, threads: config.EMBED_THREADS }, log);
  const registry = new ModelRegistry({ db, store: deps.store, forward, maxModels: config.EMBED_MAX_MODELS, log, metrics });
  metrics.countModels(() => registry.loadedModelIds.length);
  const batcher = new MicroBatcher(
    { maxBatch: config.EMBED_MAX_BATCH, maxDelayMs: config.EMBED_MAX_DELAY_MS },
    (pass) => forward.embed(pass),
    metrics,
  );
  const auth = new ApiKeyAuth(db, new ApiKeyCache(config.EMBED_KEY_CACHE_S * 1000));
  const decodeBudget = new DecodeBudget({ perRequest: config.EMBED_MAX_REQUEST_PIXELS, inFlight: config.EMBED_MAX_DECODING_PIXELS });
  const logUnexpected = (error: unknown) => log.error({ err: error }, 'request failed');

  async function embed(projectId: string, request: EmbedRequest, call: CallContext): Promise<EmbedResponse> {
    const count = imageCount(request, config.EMBED_MAX_IMAGES);
    const lease = await registry.acquire(projectId, request);
    try {
      const { model, handle } = lease;
      const output = request.output === 'OUTPUT_HEAD' ? 'head' : 'backbone';
      // Unset means true, as over REST and in both SDKs (the proto field has presence).
      const normalize = request.normalize ?? true;
      const key = `${handle}/${output}/${normalize}`;
      const input = await preprocess(request, model.transform, { maxPixels: config.EMBED_MAX_IMAGE_PIXELS, budget: decodeBudget });
      const { data, dim } = await batcher.submit({ key, handle, output, normalize, transform: model.transform, input, ...call });
      checkFiniteVectors(data, dim, request);
      return {
        vectors: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
        count,
        dim,
        modelId: model.id,
        alias: lease.alias,
        embeddingSpaceId: model.embeddingSpaceId,
        output: output === 'head' ? 'OUTPUT_HEAD' : 'OUTPUT_BACKBONE',
        normalized: normalize,
        requestId: request.requestId ?? '',
      };
    } finally {
      lease.release();
    }
  }

  /** Counts the call once, with the status it ends with. */
  const callMetrics = (method: string) => {
    const started = performance.now();
    return (code: grpc.status) => metrics.request(method, code, (performance.now() - started) / 1000);
  };

  const unary =
    <Req, Res>(method: string, work: (projectId: string, request: Req, call: CallContext) => Promise<Res>) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
      const ended = callMetrics(method);
      auth
        .projectOf(call.metadata)
        .then((projectId) => work(projectId, parsed(call.request), contextOf(call)))
        .then(
          (response) => {
            ended(grpc.status.OK);
            callback(null, response);
          },
          (error) => {
            const serviceError = toServiceError(error, logUnexpected);
            ended(serviceError.code!);
            callback(serviceError);
          },
        );
    };

  function embedStream(call: grpc.ServerDuplexStream<EmbedRequest, EmbedResponse>): void {
    const context = contextOf(call);
    const ended = callMetrics('EmbedStream');
    let failed = false;
    // The first failure ends the call with its status; later ones (and the end) are ignored.
    const fail = (error: unknown, label?: string) => {
      if (failed) return;
      failed = true;
      const status = toServiceError(error, logUnexpected);
      ended(status.code!);
      call.emit('error', { ...status, details: shortDetails(label ? `${label}: ${status.details}` : status.details!) });
    };
    const project = auth.projectOf(call.metadata);
    // Authentication fails the call even when no message ever comes, and before the end could say OK.
    project.catch((error: unknown) => fail(error));
    // Responses go out in request order; requests are worked on concurrently up to STREAM_WINDOW.
    let tail: Promise<unknown> = project.catch(() => {});
    let inFlight = 0;
    let received = 0;
    call.on('data', (request: EmbedRequest) => {
      if (failed) return;
      const index = received++;
      if (++inFlight >= STREAM_WINDOW) call.pause();
      const result = project.then((projectId) => embed(projectId, parsed(request), context));
      result.catch(() => {}); // handled below, in order
      tail = tail.then(async () => {
        try {
          if (!failed) call.write(await result);
        } catch (error) {
          fail(error, `request ${request.requestId || `#${index}`}`);
        }
        if (--inFlight < STREAM_WINDOW) call.resume();
      });
    });
    call.on('end', () =>
      void tail.then(() => {
        if (failed) return;
        ended(grpc.status.OK);
        call.end();
      }),
    );
  }

  const pkg = loadEmbeddingProto([healthProtoPath]);
  const server = new grpc.Server({ 'grpc.max_receive_message_length': config.EMBED_MAX_MESSAGE_BYTES });
  server.addService(withTolerantDecoding(embeddingServiceDefinition(pkg)), {
    Embed: unary('Embed', embed),
    EmbedStream: embedStream,
    ListModels: unary('ListModels', async (projectId: string) => ({ models: (await listModels(db, projectId)).map(toModelMessage) })),
    GetModel: unary('GetModel', async (projectId: string, selector: ModelSelector) => ({
      model: toModelMessage(await resolveModel(db, { projectId, alias: selector.alias, modelId: selector.modelId })),
    })),
  });
  const health = new HealthImplementation({ '': 'NOT_SERVING', [EMBEDDING_SERVICE]: 'NOT_SERVING' });
  health.addToServer(server);
  new ReflectionService(pkg).addToServer(server);

  const modelListener = listenModelUpdates(deps.databaseUrl, {
    onUpdate: (u) => void registry.refreshAlias(u.projectId, u.alias),
    onConnect: () => void registry.refreshAll(),
    onError: (error) => log.warn({ err: error }, 'model update listener lost its connection; reconnecting'),
  });
  const keyListener = watchApiKeyChanges(deps.databaseUrl, auth.cache, log);
  const listeners = [modelListener, keyListener];
  const poll = setInterval(() => void registry.refreshAll(), config.EMBED_POLL_INTERVAL_S * 1000);
  const host = config.EMBED_HOST.includes(':') ? `[${config.EMBED_HOST}]` : config.EMBED_HOST;
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${host}:${config.EMBED_PORT}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    widenFlowControlWindow(server);
    await Promise.all(listeners.map((l) => l.ready));
  } catch (error) {
    clearInterval(poll);
    server.forceShutdown();
    await Promise.all(listeners.map((l) => l.close()));
    await forward.close();
    throw error;
  }
  const setHealth = (status: 'SERVING' | 'NOT_SERVING') => {
    health.setStatus('', status);
    health.setStatus(EMBEDDING_SERVICE, status);
  };
  setHealth('SERVING');
  log.info({ address: `${host}:${port}` }, 'embedder listening');

  let closing: Promise<void> | undefined;
  const shutdown = async () => {
    setHealth('NOT_SERVING');
    await sleep(config.EMBED_DRAIN_DELAY_MS);
    batcher.flush();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        log.warn('shutdown timeout: cutting the calls still in flight');
        server.forceShutdown();
        resolve();
      }, config.EMBED_SHUTDOWN_TIMEOUT_S * 1000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    clearInterval(poll);
    await Promise.all(listeners.map((l) => l.close()));
    registry.dispose();
    await forward.close();
    log.info('embedder stopped');
  };
  return {
    address: `${host}:${port}`,
    port,
    stats: batcher.stats,
    get backend() {
      return forward.backend;
    },
    get loadedModelIds() {
      return registry.loadedModelIds;
    },
    close: () => (closing ??= shutdown()),
  };
}

// HTTP/2 connection-level receive window of the server's sessions. Node's default (64 KiB) lets a client
// have only 64 KiB of request bytes in flight per connection per round trip: bulk requests (hundreds of
// encoded images) from another region would crawl at 64 KiB per RTT.
const CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;

/** grpc-js has no server option for it (`grpc-node.flow_control_window` is client-only): set it per session. */
function widenFlowControlWindow(server: grpc.Server): void {
  const http2Servers = (server as unknown as { http2Servers?: Map<Http2Server | Http2SecureServer, unknown> }).http2Servers;
  for (const http2Server of http2Servers?.keys() ?? []) {
    http2Server.on('session', (session: Http2Session) => {
      const widen = () => {
        try {
          session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
        } catch {
          // A session already closing: nothing to widen.
        }
      };
      if (session.socket && !session.connecting) widen();
      else session.once('connect', widen);
    });
  }
}

function toModelMessage(model: Model): ModelMessage {
  const e = model.encoder;
  // The BN settings do not change the layer plan.
  const plan = resnetPlan({ arch: e.arch, stem: e.stem, width: e.width, inChannels: e.in_channels, head: e.head, dim: e.dim, bnMomentum: 0.1, bnEps: 1e-5 });
  return {
    id: model.id,
    embeddingSpaceId: model.embeddingSpaceId,
    aliases: model.aliases,
    jobId: model.jobId,
    step: model.step,
    epoch: model.epoch,
    final: model.final,
    transform: model.transform,
    encoder: { arch: e.arch, stem: e.stem, width: e.width, inChannels: e.in_channels, head: e.head, dim: e.dim },
    backboneDim: plan.featureDim,
    headDim: e.dim,
    createdAt: model.createdAt.toISOString(),
  };
}
