import * as grpc from '@grpc/grpc-js';
import {
  EMBEDDING_SERVICE,
  embeddingServiceDefinition,
  loadEmbeddingProto,
  type EmbedRequest,
  type EmbedResponse,
  type ModelMessage,
  type ModelSelector,
} from './embedding-proto.js';

export interface EmbedCallOptions {
  /** Overrides the client's key for this call (a proxy calling for several projects). */
  apiKey?: string;
  deadline?: grpc.Deadline;
}

/** Promise-style calls to `moco.v1.EmbeddingService`; errors are grpc `ServiceError`s (`code`, `details`). */
export interface EmbeddingClient {
  embed(request: EmbedRequest, opts?: EmbedCallOptions): Promise<EmbedResponse>;
  /** Write EmbedRequests, read one EmbedResponse per request, in order. */
  embedStream(opts?: EmbedCallOptions): grpc.ClientDuplexStream<EmbedRequest, EmbedResponse>;
  listModels(opts?: EmbedCallOptions): Promise<ModelMessage[]>;
  getModel(selector: ModelSelector, opts?: EmbedCallOptions): Promise<ModelMessage>;
  /** The underlying grpc-js client (channel state, waitForReady). */
  readonly grpcClient: grpc.Client;
  close(): void;
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: Res) => void,
) => grpc.ClientUnaryCall;

interface RawClient extends grpc.Client {
  Embed: UnaryMethod<EmbedRequest, EmbedResponse>;
  EmbedStream(metadata: grpc.Metadata, options: grpc.CallOptions): grpc.ClientDuplexStream<EmbedRequest, EmbedResponse>;
  ListModels: UnaryMethod<object, { models: ModelMessage[] }>;
  GetModel: UnaryMethod<ModelSelector, { model: ModelMessage }>;
}

let clientConstructor: grpc.ServiceClientConstructor | undefined;

/**
 * A client of the embedder at `address` (`host:port`), authenticating with `apiKey` (`authorization:
 * Bearer` metadata). Plaintext unless `credentials` are given. Used by the REST API and the SDK.
 */
export function createEmbeddingClient(
  address: string,
  opts: { apiKey?: string; credentials?: grpc.ChannelCredentials; maxMessageBytes?: number } = {},
): EmbeddingClient {
  clientConstructor ??= grpc.makeGenericClientConstructor(embeddingServiceDefinition(loadEmbeddingProto()), EMBEDDING_SERVICE);
  const maxBytes = opts.maxMessageBytes ?? 64 * 1024 * 1024;
  const raw = new clientConstructor(address, opts.credentials ?? grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': maxBytes,
    'grpc.max_send_message_length': maxBytes,
  }) as unknown as RawClient;

  const metadataFor = (call: EmbedCallOptions = {}) => {
    const metadata = new grpc.Metadata();
    const key = call.apiKey ?? opts.apiKey;
    if (key) metadata.set('authorization', `Bearer ${key}`);
    return metadata;
  };
  const unary = <Req, Res>(method: UnaryMethod<Req, Res>, request: Req, call?: EmbedCallOptions) =>
    new Promise<Res>((resolve, reject) => {
      method.call(raw, request, metadataFor(call), { deadline: call?.deadline }, (error, response) =>
        error ? reject(error) : resolve(response!),
      );
    });

  return {
    embed: (request, call) => unary(raw.Embed, request, call),
    embedStream: (call) => raw.EmbedStream(metadataFor(call), { deadline: call?.deadline }),
    listModels: async (call) => (await unary(raw.ListModels, {}, call)).models,
    getModel: async (selector, call) => (await unary(raw.GetModel, selector, call)).model,
    grpcClient: raw,
    close: () => raw.close(),
  };
}
