import { createRequire } from 'node:module';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { embeddingServiceDefinition, loadEmbeddingProto, type EmbedRequest, type EmbedResponse, type TensorInput } from '@moco/models';
import type { Rng } from '@moco/moco';
import { protoPath as healthProtoPath } from 'grpc-health-check';

// Seeded random calls to every method of the embedder, each with the statuses it may end with: what
// the fault suite (grpc.test.ts) sends, and what it holds the embedder to.

const embedding = embeddingServiceDefinition(loadEmbeddingProto());
const reflectionProto = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json')),
  'build/proto/grpc/reflection/v1/reflection.proto',
);
const others = protoLoader.loadSync([healthProtoPath, reflectionProto], { defaults: true, oneofs: true });
const serializerOf = (service: string, method: string) =>
  (others[service] as protoLoader.ServiceDefinition)[method]!.requestSerialize as (message: object) => Buffer;

export const PATHS = {
  embed: '/moco.v1.EmbeddingService/Embed',
  embedStream: '/moco.v1.EmbeddingService/EmbedStream',
  listModels: '/moco.v1.EmbeddingService/ListModels',
  getModel: '/moco.v1.EmbeddingService/GetModel',
  check: '/grpc.health.v1.Health/Check',
  watch: '/grpc.health.v1.Health/Watch',
  reflection: '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
};

export const encodeEmbedRequest = (request: EmbedRequest): Buffer => embedding.Embed!.requestSerialize(request);
export const decodeEmbedResponse = (bytes: Buffer): EmbedResponse => embedding.Embed!.responseDeserialize(bytes) as EmbedResponse;

/** What the cases are made of: real keys, models and encoded images of the test's project. */
export interface Fixtures {
  /** Keys of two projects, each with its own model promoted to "production". */
  projects: { apiKey: string; modelId: string }[];
  revokedKey: string;
  images: {
    /** Decodable, within every budget. */
    good: Buffer[];
    /** 1024x1024: four fit the per-request pixel budget, five do not. */
    mega: Buffer;
    /** 4096x4096: past the per-request pixel budget alone. */
    giant: Buffer;
    /** A valid header, the pixels cut off. */
    truncated: Buffer;
  };
  limits: { maxImages: number; maxMessageBytes: number; requestPixels: number };
  /** The model's input: size x size x channels. */
  size: number;
  channels: number;
  /** Vector dimension per output. */
  dims: { OUTPUT_BACKBONE: number; OUTPUT_HEAD: number };
}

export interface FaultCase {
  /** What was sent, for failure messages. */
  name: string;
  kind: 'unary' | 'stream' | 'vanish';
  path: string;
  metadata: Record<string, string>;
  messages: Buffer[];
  halfClose?: boolean;
  cancelAfter?: number;
  deadlineMs: number;
  /** The statuses it may end with. */
  expect: status[];
  /** For Embed and EmbedStream: what each OK response must be. */
  responses?: ExpectedEmbed[];
  /** For other streams: how many responses a clean end brings. */
  responseCount?: number;
}

export interface ExpectedEmbed {
  modelId: string;
  count: number;
  dim: number;
  requestId: string;
}

/** An Embed request and how the embedder must answer it (for a valid key). */
interface EmbedCase {
  name: string;
  message: Buffer;
  code: status;
  /** When `code` is OK, sometimes INVALID_ARGUMENT is right too (a finite input that overflows in the model). */
  orInvalid?: boolean;
  expected?: ExpectedEmbed;
}

const CALL_DEADLINE_MS = 30_000;
const OPEN_STREAM_DEADLINE_MS = 1_500;

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(items.length)]!;
const randomBytes = (rng: Rng, n: number) => Buffer.from(Array.from({ length: n }, () => rng.int(256)));
const float32Bytes = (values: Float32Array) => Buffer.from(values.buffer, values.byteOffset, values.byteLength);

/** Credentials and the project they open; none for every way of being refused. */
interface Credentials {
  name: string;
  metadata: Record<string, string>;
  /** The project the key opens; none when it is refused. */
  project?: number;
}

function credentials(rng: Rng, f: Fixtures): Credentials {
  const roll = rng.int(10);
  if (roll < 6) {
    const project = rng.int(f.projects.length);
    return { name: `key of project ${project}`, metadata: { authorization: `Bearer ${f.projects[project]!.apiKey}` }, project };
  }
  return pick<Credentials>(rng, [
    { name: 'no authorization', metadata: {} },
    { name: 'malformed: no scheme', metadata: { authorization: f.projects[0]!.apiKey } },
    { name: 'malformed: Basic', metadata: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } },
    { name: 'malformed: two tokens', metadata: { authorization: 'Bearer a b' } },
    { name: 'malformed: empty bearer', metadata: { authorization: 'Bearer ' } },
    { name: 'wrong key', metadata: { authorization: `Bearer sk_${randomBytes(rng, 16).toString('hex')}` } },
    { name: 'revoked key', metadata: { authorization: `Bearer ${f.revokedKey}` } },
  ]);
}

/** Model selection: the model it serves for `project`, or null when NOT_FOUND. */
function selector(rng: Rng, f: Fixtures, project: number): { name: string; fields: EmbedRequest; modelId: string | null; alias: string } {
  const own = f.projects[project]!.modelId;
  const other = f.projects[(project + 1) % f.projects.length]!.modelId;
  const garbage = pick(rng, ['\u0000', 'a'.repeat(5000), '../../etc', 'Ä\u202e', ' production', 'ckpt_\u0000']);
  return pick(rng, [
    { name: 'no model', fields: {}, modelId: own, alias: 'production' },
    { name: 'alias production', fields: { alias: 'production' }, modelId: own, alias: 'production' },
    { name: 'unknown alias', fields: { alias: 'staging' }, modelId: null, alias: '' },
    { name: 'garbage alias', fields: { alias: garbage }, modelId: null, alias: '' },
    { name: 'own model id', fields: { modelId: own }, modelId: own, alias: '' },
    { name: "another project's model id", fields: { modelId: other }, modelId: null, alias: '' },
    { name: 'unknown model id', fields: { modelId: `ckpt_${randomBytes(rng, 16).toString('hex')}` }, modelId: null, alias: '' },
    { name: 'garbage model id', fields: { modelId: garbage }, modelId: null, alias: '' },
  ]);
}

type Input = { name: string; fields: EmbedRequest; count: number; code: status; orInvalid?: boolean };

/** Encoded images: the status they earn once the count and the model are right. */
function imagesInput(rng: Rng, f: Fixtures): Input {
  const kind = pick(rng, ['good', 'good', 'garbage', 'empty', 'truncated', 'mega', 'giant', 'too many'] as const);
  const good = () => pick(rng, f.images.good);
  const n = 1 + rng.int(4);
  const some = (odd: Buffer) => {
    const images = Array.from({ length: n }, good);
    images[rng.int(n)] = odd;
    return images;
  };
  switch (kind) {
    case 'good':
      return { name: `${n} good images`, fields: { images: Array.from({ length: n }, good) }, count: n, code: status.OK };
    case 'garbage':
      return { name: 'garbage image bytes', fields: { images: some(randomBytes(rng, 1 + rng.int(2000))) }, count: n, code: status.INVALID_ARGUMENT };
    case 'empty':
      return { name: 'an empty image', fields: { images: some(Buffer.alloc(0)) }, count: n, code: status.INVALID_ARGUMENT };
    case 'truncated':
      return { name: 'a truncated PNG', fields: { images: some(f.images.truncated) }, count: n, code: status.INVALID_ARGUMENT };
    case 'mega': {
      const k = 1 + rng.int(6);
      const fits = k * 1024 * 1024 <= f.limits.requestPixels;
      return { name: `${k} 1024x1024 images`, fields: { images: Array(k).fill(f.images.mega) }, count: k, code: fits ? status.OK : status.RESOURCE_EXHAUSTED };
    }
    case 'giant':
      return { name: 'a 4096x4096 image', fields: { images: some(f.images.giant) }, count: n, code: status.RESOURCE_EXHAUSTED };
    case 'too many': {
      const k = f.limits.maxImages + 1;
      return { name: `${k} images`, fields: { images: Array(k).fill(f.images.good[0]) }, count: k, code: status.RESOURCE_EXHAUSTED };
    }
  }
}

/** A float32 tensor, right or wrong in one way. */
function tensorInput(rng: Rng, f: Fixtures): Input {
  const { size, channels } = f;
  const n = 1 + rng.int(3);
  const values = (count: number, value: () => number) => Float32Array.from({ length: count }, value);
  const pixels = (h: number, w: number, c = channels) => values(n * h * w * c, () => rng.int(256));
  const tensor = (shape: number[], data: Float32Array | Buffer, preprocessed = false): EmbedRequest => ({
    tensor: { shape, data: Buffer.isBuffer(data) ? data : float32Bytes(data as Float32Array), preprocessed } satisfies TensorInput,
  });
  const invalid = (name: string, fields: EmbedRequest): Input => ({ name, fields, count: n, code: status.INVALID_ARGUMENT });
  const kind = pick(rng, ['pixels', 'resize', 'preprocessed', 'non-finite', 'overflow', 'large finite', 'rank', 'zero dim', 'channels', 'length', 'huge dims', 'preprocessed size', 'too many'] as const);
  switch (kind) {
    case 'pixels':
      return { name: 'pixel tensor', fields: tensor([n, size, size, channels], pixels(size, size)), count: n, code: status.OK };
    case 'resize': {
      const h = 1 + rng.int(40);
      const w = 1 + rng.int(40);
      return { name: `pixel tensor ${h}x${w}`, fields: tensor([n, h, w, channels], pixels(h, w)), count: n, code: status.OK };
    }
    case 'preprocessed':
      return { name: 'preprocessed tensor', fields: tensor([n, size, size, channels], values(n * size * size * channels, () => rng.normal()), true), count: n, code: status.OK };
    case 'non-finite': {
      const data = pixels(size, size);
      const bad = pick(rng, [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
      data[rng.int(data.length)] = bad;
      return invalid(`tensor holding ${bad}`, tensor([n, size, size, channels], data, rng.bernoulli(0.5)));
    }
    case 'overflow':
      return invalid('preprocessed tensor of -3e38', tensor([n, size, size, channels], values(n * size * size * channels, () => -3e38), true));
    case 'large finite': {
      const data = values(n * size * size * channels, () => rng.normal());
      data[rng.int(data.length)] = pick(rng, [3e38, -3e38, 1e30]);
      // One huge value may or may not overflow in the model: either a finite answer or a refusal.
      return { name: 'one huge finite value', fields: tensor([n, size, size, channels], data, true), count: n, code: status.OK, orInvalid: true };
    }
    case 'rank': {
      const shape = pick(rng, [[n], [n, size], [n, size, size], [n, size, size, channels, 1]]);
      return invalid(`tensor of rank ${shape.length}`, tensor(shape, pixels(size, size)));
    }
    case 'zero dim':
      return invalid('tensor with a zero dimension', tensor([n, 0, size, channels], Buffer.alloc(0)));
    case 'channels': {
      const c = pick(rng, [1, 2, 4].filter((x) => x !== channels));
      return invalid(`tensor of ${c} channels`, tensor([n, size, size, c], pixels(size, size, c)));
    }
    case 'length': {
      const data = float32Bytes(pixels(size, size));
      const cut = 1 + rng.int(7);
      const wrong = rng.bernoulli(0.5) ? data.subarray(cut) : Buffer.concat([data, Buffer.alloc(cut)]);
      return invalid(`tensor data ${cut} bytes off`, tensor([n, size, size, channels], wrong));
    }
    case 'huge dims':
      return invalid('tensor of 2^32-1 x 2^32-1', tensor([n, 2 ** 32 - 1, 2 ** 32 - 1, channels], pixels(1, 1)));
    case 'preprocessed size':
      return invalid('preprocessed tensor of the wrong size', tensor([n, size + 1, size, channels], pixels(size + 1, size), true));
    case 'too many': {
      const k = f.limits.maxImages + 1;
      return { name: `tensor of ${k} images`, fields: tensor([k, size, size, channels], Buffer.alloc(16)), count: k, code: status.RESOURCE_EXHAUSTED };
    }
  }
}

/** Bytes that protobuf cannot decode as an EmbedRequest (an unknown field of wire type 7; a field longer than the message). */
function unparsable(rng: Rng): Buffer {
  return pick(rng, [Buffer.from([0x7f, ...randomBytes(rng, rng.int(20))]), Buffer.from([0x1a, 0xff, 0x01, ...randomBytes(rng, rng.int(100))])]);
}

/** One Embed request for a valid key of `project`, and its right answer: count, then model, then content. */
function embedCase(rng: Rng, f: Fixtures, project: number): EmbedCase {
  if (rng.int(20) === 0) return { name: 'unparsable message', message: unparsable(rng), code: status.INVALID_ARGUMENT };
  const model = selector(rng, f, project);
  const input = pick(rng, [
    imagesInput,
    tensorInput,
    (): Input => ({ name: 'no images', fields: {}, count: 0, code: status.INVALID_ARGUMENT }),
    (r: Rng): Input => ({ name: 'images and tensor', fields: { images: [pick(r, f.images.good)], tensor: { shape: [1, f.size, f.size, f.channels], data: Buffer.alloc(f.size * f.size * f.channels * 4) } }, count: 1, code: status.INVALID_ARGUMENT }),
  ])(rng, f);
  const output = pick(rng, ['OUTPUT_UNSPECIFIED', 'OUTPUT_BACKBONE', 'OUTPUT_HEAD', 9] as const);
  const requestId = pick(rng, ['', 'r-1', randomBytes(rng, 8).toString('hex'), 'x'.repeat(3000)]);
  const request = { ...model.fields, ...input.fields, output: output as EmbedRequest['output'], normalize: rng.bernoulli(0.5), requestId };
  const name = `${model.name}, ${input.name}, output ${output}`;
  const countFails = input.count === 0 || input.count > f.limits.maxImages || ('images' in input.fields && 'tensor' in input.fields);
  const code = countFails ? input.code : model.modelId === null ? status.NOT_FOUND : input.code;
  const expected =
    code === status.OK
      ? { modelId: model.modelId!, count: input.count, dim: f.dims[output === 'OUTPUT_HEAD' ? 'OUTPUT_HEAD' : 'OUTPUT_BACKBONE'], requestId }
      : undefined;
  return { name, message: encodeEmbedRequest(request), code, orInvalid: input.orInvalid && code === status.OK, expected };
}

/** An Embed or EmbedStream case (with any credentials), or a client that vanishes mid-call. */
function embeddingCase(rng: Rng, f: Fixtures): FaultCase {
  const who = credentials(rng, f);
  const kind = pick(rng, ['unary', 'unary', 'unary', 'stream', 'stream', 'vanish', 'oversize'] as const);
  if (kind === 'oversize') {
    // Refused by grpc-js before any handler, whatever the key.
    const message = encodeEmbedRequest({ images: [Buffer.alloc(f.limits.maxMessageBytes + 1 + rng.int(1000), rng.int(256))] });
    return { name: `oversize Embed, ${who.name}`, kind: 'unary', path: PATHS.embed, metadata: who.metadata, messages: [message], deadlineMs: CALL_DEADLINE_MS, expect: [status.RESOURCE_EXHAUSTED] };
  }
  const cases = Array.from({ length: kind === 'unary' ? 1 : rng.int(5) }, () => embedCase(rng, f, who.project ?? 0));
  if (kind === 'vanish') {
    const message = cases[0]?.message ?? encodeEmbedRequest({});
    const path = pick(rng, [PATHS.embed, PATHS.embedStream]);
    return { name: `client vanishes mid-message on ${path}, ${who.name}`, kind: 'vanish', path, metadata: who.metadata, messages: [message], deadlineMs: CALL_DEADLINE_MS, expect: [] };
  }
  const describe = `${who.name}: ${cases.map((c) => c.name).join(' | ') || 'no messages'}`;
  if (kind === 'unary') {
    const c = cases[0]!;
    const codes = who.project === undefined ? [status.UNAUTHENTICATED] : c.orInvalid ? [c.code, status.INVALID_ARGUMENT] : [c.code];
    return { name: `Embed, ${describe}`, kind, path: PATHS.embed, metadata: who.metadata, messages: [c.message], deadlineMs: CALL_DEADLINE_MS, expect: codes, responses: c.expected ? [c.expected] : [] };
  }
  const ending = pick(rng, ['half-close', 'half-close', 'cancel', 'cancel mid-way', 'open'] as const);
  const failing = cases.findIndex((c) => c.code !== status.OK);
  const codes =
    who.project === undefined
      ? [status.UNAUTHENTICATED]
      : failing >= 0
        ? [cases[failing]!.code]
        : [ending === 'open' ? status.DEADLINE_EXCEEDED : status.OK];
  // A message that may be refused or answered ends the stream either way.
  if (who.project !== undefined && cases.some((c) => c.orInvalid)) codes.push(status.INVALID_ARGUMENT, status.OK);
  if (ending.startsWith('cancel')) codes.push(status.CANCELLED);
  return {
    name: `EmbedStream (${ending}), ${describe}`,
    kind,
    path: PATHS.embedStream,
    metadata: who.metadata,
    messages: cases.map((c) => c.message),
    halfClose: ending !== 'open',
    cancelAfter: ending === 'cancel' ? 0 : ending === 'cancel mid-way' ? 1 : undefined,
    deadlineMs: ending === 'open' ? OPEN_STREAM_DEADLINE_MS : CALL_DEADLINE_MS,
    expect: codes,
    responses: who.project === undefined ? [] : cases.slice(0, failing >= 0 ? failing : undefined).flatMap((c) => (c.expected ? [c.expected] : [])),
  };
}

/** ListModels, GetModel, health and reflection: with any credentials (health and reflection take none). */
function otherCase(rng: Rng, f: Fixtures): FaultCase {
  const who = credentials(rng, f);
  const base = { kind: 'unary' as const, metadata: who.metadata, deadlineMs: CALL_DEADLINE_MS };
  const refused = who.project === undefined;
  switch (pick(rng, ['list', 'get', 'check', 'watch', 'reflection'] as const)) {
    case 'list':
      return { ...base, name: `ListModels, ${who.name}`, path: PATHS.listModels, messages: [Buffer.alloc(0)], expect: [refused ? status.UNAUTHENTICATED : status.OK] };
    case 'get': {
      const model = selector(rng, f, who.project ?? 0);
      const code = refused ? status.UNAUTHENTICATED : model.modelId === null ? status.NOT_FOUND : status.OK;
      const message = embedding.GetModel!.requestSerialize(model.fields);
      return { ...base, name: `GetModel ${model.name}, ${who.name}`, path: PATHS.getModel, messages: [message], expect: [code] };
    }
    case 'check': {
      const service = pick(rng, ['', 'moco.v1.EmbeddingService', 'nope.Service']);
      const message = serializerOf('grpc.health.v1.Health', 'Check')({ service });
      return { ...base, name: `Health.Check "${service}"`, path: PATHS.check, messages: [message], expect: [service === 'nope.Service' ? status.NOT_FOUND : status.OK] };
    }
    case 'watch': {
      // Watch streams until the client leaves: it leaves after the first status.
      const service = pick(rng, ['', 'moco.v1.EmbeddingService', 'nope.Service']);
      const message = serializerOf('grpc.health.v1.Health', 'Watch')({ service });
      return { ...base, kind: 'stream', name: `Health.Watch "${service}"`, path: PATHS.watch, messages: [message], halfClose: true, cancelAfter: 1, expect: [status.CANCELLED] };
    }
    case 'reflection': {
      const serialize = serializerOf('grpc.reflection.v1.ServerReflection', 'ServerReflectionInfo');
      const asks = Array.from({ length: 1 + rng.int(4) }, () =>
        pick(rng, [{ listServices: '*' }, { fileContainingSymbol: 'moco.v1.EmbeddingService' }, { fileContainingSymbol: 'nope.\u0000' }, { fileByFilename: 'nope.proto' }, {}]),
      );
      return { ...base, kind: 'stream', name: `reflection ${JSON.stringify(asks)}`, path: PATHS.reflection, messages: asks.map(serialize), halfClose: true, expect: [status.OK], responseCount: asks.length };
    }
  }
}

export function randomCase(rng: Rng, f: Fixtures): FaultCase {
  return rng.int(5) === 0 ? otherCase(rng, f) : embeddingCase(rng, f);
}
