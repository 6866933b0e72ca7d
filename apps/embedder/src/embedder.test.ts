import { createRequire } from 'node:module';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { embedderEnv, loadConfig } from '@moco/config';
import { createDb, createTestDatabase, type Db, type TestDatabase } from '@moco/db';
import {
  createEmbeddingClient,
  embeddingSpaceId,
  promoteModel,
  unpackVectors,
  type CheckpointTransform,
  type EmbeddingClient,
  type EmbedRequest,
  type EmbedResponse,
} from '@moco/models';
import { evalTransform, Rng, tf, type Moco } from '@moco/moco';
import { createObjectStore, startTestS3Server, type ObjectStore, type TestS3Server } from '@moco/storage';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { encodeImage } from '../../../libs/data/src/test-fixtures.js';
import { startEmbedder, type Embedder } from './server.js';
import { createCheckpoint, createProjectWithKey, tinyConfig, type TestCheckpoint } from './testing.js';

const SIZE = 16;
const rgb: CheckpointTransform = { size: SIZE, channels: 3, mean: [0.5, 0.4, 0.3], std: [0.25, 0.2, 0.3] };
const grey: CheckpointTransform = { size: SIZE, channels: 1, mean: [0.45], std: [0.22] };

let tdb: TestDatabase;
let db: Db;
let s3: TestS3Server;
let store: ObjectStore;
let projectId: string;
let apiKey: string;
let a: TestCheckpoint;
let b: TestCheckpoint;
let gray: TestCheckpoint;
let broken: TestCheckpoint;
let main: Embedder;
let slow: Embedder;
let client: EmbeddingClient;
let slowClient: EmbeddingClient;
const logs: { level: number; msg: string; modelId?: string }[] = [];

const config = (env: Record<string, string>) => loadConfig(z.object(embedderEnv), { EMBED_PORT: '0', ...env });

function randomPixels(n: number, channels: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  return new Uint8Array(n * SIZE * SIZE * channels).map(() => rng.int(256));
}

/** PNGs of exactly the model's size, so decoding gives back `pixels` unchanged. */
async function pngs(pixels: Uint8Array, channels: 1 | 3): Promise<Buffer[]> {
  const per = SIZE * SIZE * channels;
  return Promise.all(
    Array.from({ length: pixels.length / per }, (_, i) =>
      encodeImage(pixels.subarray(i * per, (i + 1) * per), { width: SIZE, height: SIZE, channels }),
    ),
  );
}

/** What the library itself computes: evaluation transform, then Encoder.embed. */
async function reference(moco: Moco, pixels: Uint8Array, t: CheckpointTransform, output: 'backbone' | 'head', normalize: boolean) {
  const n = pixels.length / (SIZE * SIZE * t.channels);
  const x = tf.tidy(() => evalTransform(tf.tensor4d(pixels, [n, SIZE, SIZE, t.channels], 'float32'), t));
  const out = await moco.query.embed(x, { output, normalize });
  x.dispose();
  return out;
}

function maxDiff(response: EmbedResponse, expected: { data: Float32Array; dim: number }): number {
  expect(response.dim).toBe(expected.dim);
  const got = unpackVectors(response);
  let diff = 0;
  got.forEach((v, i) => v.forEach((x, j) => (diff = Math.max(diff, Math.abs(x - expected.data[i * expected.dim + j]!)))));
  return diff;
}

const codeOf = (p: Promise<unknown>) => p.then(() => 'OK', (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`);

function loadService(file: string, name: string): grpc.ServiceClientConstructor {
  const pkg = protoLoader.loadSync(file, { defaults: true, enums: String });
  return grpc.makeGenericClientConstructor(pkg[name] as grpc.ServiceDefinition, name);
}

async function healthOf(address: string, service: string): Promise<string> {
  const Health = loadService(healthProtoPath, 'grpc.health.v1.Health');
  const c = new Health(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Function>;
  try {
    return await new Promise((resolve, reject) =>
      c.Check!({ service }, (e: Error | null, r: { status: string }) => (e ? reject(e) : resolve(r.status))),
    );
  } finally {
    c.close();
  }
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  [tdb, s3] = await Promise.all([createTestDatabase(), startTestS3Server()]);
  db = createDb(tdb.url);
  store = createObjectStore({ kind: 's3', ...s3 });
  ({ projectId, apiKey } = await createProjectWithKey(db));
  a = await createCheckpoint(db, store, { projectId, config: tinyConfig(3), transform: rgb, seed: 1 });
  b = await createCheckpoint(db, store, { projectId, config: tinyConfig(3), transform: rgb, seed: 2 });
  gray = await createCheckpoint(db, store, { projectId, config: tinyConfig(1), transform: grey, seed: 3 });
  broken = await createCheckpoint(db, store, { projectId, config: tinyConfig(3), transform: rgb, seed: 4, objectBytes: Buffer.from('garbage') });
  broken.moco.dispose();
  await promoteModel(db, { projectId, alias: 'production', checkpointId: a.id });

  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const deps = { db, databaseUrl: tdb.url, store, log };
  main = await startEmbedder(
    config({ EMBED_MAX_DELAY_MS: '2', EMBED_MAX_MODELS: '2', EMBED_MAX_IMAGES: '16', EMBED_MAX_MESSAGE_BYTES: '200000', EMBED_POLL_INTERVAL_S: '600' }),
    deps,
  );
  // Batches of 4 that wait up to 5 s for company: batching, deadlines and shutdown are visible.
  slow = await startEmbedder(
    config({ EMBED_MAX_BATCH: '4', EMBED_MAX_DELAY_MS: '5000', EMBED_DRAIN_DELAY_MS: '300', EMBED_POLL_INTERVAL_S: '1' }),
    deps,
  );
  client = createEmbeddingClient(main.address, { apiKey });
  slowClient = createEmbeddingClient(slow.address, { apiKey });
});

afterAll(async () => {
  client?.close();
  slowClient?.close();
  await Promise.all([main?.close(), slow?.close()]);
  for (const c of [a, b, gray]) c?.moco.dispose();
  await db?.$disconnect();
  await Promise.all([tdb?.drop(), s3?.close()]);
});

describe('Embed', () => {
  it("returns the library's own forward pass of the checkpoint, per output and normalisation", async () => {
    const pixels = randomPixels(3, 3, 10);
    const images = await pngs(pixels, 3);
    for (const output of ['backbone', 'head'] as const) {
      for (const normalize of [false, true]) {
        const response = await client.embed({ images, output: output === 'head' ? 'OUTPUT_HEAD' : 'OUTPUT_BACKBONE', normalize });
        const expected = await reference(a.moco, pixels, rgb, output, normalize);
        expect(response).toMatchObject({ count: 3, modelId: a.id, alias: 'production', normalized: normalize });
        expect(response.dim).toBe(output === 'head' ? 8 : 32); // dim 8; width 4 -> 32 backbone features
        expect(response.embeddingSpaceId).toBe(embeddingSpaceId(a.jobId, 1));
        expect(maxDiff(response, expected)).toBeLessThan(1e-5);
        const norms = unpackVectors(response).map((v) => Math.hypot(...v));
        if (normalize) norms.forEach((n) => expect(n).toBeCloseTo(1, 5));
        else expect(norms.some((n) => Math.abs(n - 1) > 1e-3)).toBe(true);
      }
    }
    // The same pixels as a raw tensor, and as an already transformed one.
    const floats = Float32Array.from(pixels);
    const raw = await client.embed({ tensor: { shape: [3, SIZE, SIZE, 3], data: Buffer.from(floats.buffer) }, normalize: false });
    expect(maxDiff(raw, await reference(a.moco, pixels, rgb, 'backbone', false))).toBeLessThan(1e-5);
    // normalize unset means true, as over REST and in both SDKs.
    const unset = await client.embed({ tensor: { shape: [3, SIZE, SIZE, 3], data: Buffer.from(floats.buffer) } });
    expect(unset.normalized).toBe(true);
    expect(maxDiff(unset, await reference(a.moco, pixels, rgb, 'backbone', true))).toBeLessThan(1e-5);
    const x = tf.tidy(() => evalTransform(tf.tensor4d(pixels, [3, SIZE, SIZE, 3], 'float32'), rgb));
    const input = Buffer.from((await x.data<'float32'>()).buffer);
    x.dispose();
    const pre = await client.embed({ tensor: { shape: [3, SIZE, SIZE, 3], data: input, preprocessed: true }, normalize: false });
    expect(maxDiff(pre, await reference(a.moco, pixels, rgb, 'backbone', false))).toBeLessThan(1e-5);
  });

  it('serves an exact model id (one channel here), and NOT_FOUND for unknown models', async () => {
    const pixels = randomPixels(2, 1, 11);
    const response = await client.embed({ modelId: gray.id, images: await pngs(pixels, 1), output: 'OUTPUT_HEAD', normalize: true });
    expect(response).toMatchObject({ modelId: gray.id, alias: '', embeddingSpaceId: embeddingSpaceId(gray.jobId, 1) });
    expect(maxDiff(response, await reference(gray.moco, pixels, grey, 'head', true))).toBeLessThan(1e-5);

    const other = await createProjectWithKey(db);
    const image = (await pngs(randomPixels(1, 3, 1), 3))[0]!;
    expect(await codeOf(client.embed({ modelId: 'ckpt_nope', images: [image] }))).toMatch(/^NOT_FOUND: no model ckpt_nope/);
    expect(await codeOf(client.embed({ alias: 'nope', images: [image] }))).toMatch(/^NOT_FOUND: no model has the alias "nope"/);
    // A model of another project does not exist for this key, even once loaded.
    expect(await codeOf(client.embed({ modelId: a.id, images: [image] }, { apiKey: other.apiKey }))).toMatch(/^NOT_FOUND/);
  });

  it('rejects bad input, too much of it, bad keys, and a model that cannot load, with the right status', async () => {
    const [good] = await pngs(randomPixels(1, 3, 12), 3);
    const jpeg = await encodeImage(randomPixels(1, 3, 13), { width: SIZE, height: SIZE, channels: 3 }, 'jpeg');
    expect(await codeOf(client.embed({ images: [good!, jpeg] }))).toBe('OK');
    expect(await codeOf(client.embed({ images: [good!, Buffer.from('not an image')] }))).toMatch(/^INVALID_ARGUMENT: images\[1\] cannot be decoded/);
    expect(await codeOf(client.embed({ images: [] }))).toMatch(/^INVALID_ARGUMENT: no images/);
    expect(await codeOf(client.embed({ tensor: { shape: [1, SIZE, SIZE, 1], data: Buffer.alloc(SIZE * SIZE * 4) } }))).toMatch(
      /^INVALID_ARGUMENT: tensor has 1 channels; the model takes 3/,
    );
    expect(await codeOf(client.embed({ images: Array(17).fill(good) }))).toMatch(/^RESOURCE_EXHAUSTED: 17 images in one request; the limit is 16/);
    expect(await codeOf(client.embed({ images: [Buffer.alloc(300_000)] }))).toMatch(/^RESOURCE_EXHAUSTED/);
    expect(await codeOf(client.embed({ images: [good!] }, { apiKey: 'sk_wrong' }))).toMatch(/^UNAUTHENTICATED/);
    await promoteModel(db, { projectId, alias: 'broken', checkpointId: broken.id });
    expect(await codeOf(client.embed({ alias: 'broken', images: [good!] }))).toMatch(/^UNAVAILABLE: model .* could not be loaded/);
    expect(logs.some((l) => l.msg === 'model failed to load' && l.modelId === broken.id)).toBe(true);
  });

  it('switches models on promotion under load without failing a call; a broken checkpoint leaves the old model serving', async () => {
    await promoteModel(db, { projectId, alias: 'staging', checkpointId: a.id });
    const [image] = await pngs(randomPixels(1, 3, 14), 3);
    const spaces: string[][] = [[], [], []];
    const errors: unknown[] = [];
    let stop = false;
    const loops = spaces.map(async (seen) => {
      while (!stop) {
        try {
          seen.push((await client.embed({ alias: 'staging', images: [image!] })).embeddingSpaceId);
        } catch (error) {
          errors.push(error);
        }
      }
    });
    const [spaceA, spaceB] = [embeddingSpaceId(a.jobId, 1), embeddingSpaceId(b.jobId, 1)];
    await expect.poll(() => spaces.every((s) => s.length > 2)).toBe(true);
    await promoteModel(db, { projectId, alias: 'staging', checkpointId: b.id });
    await expect.poll(() => spaces.every((s) => s.at(-1) === spaceB), { timeout: 10_000 }).toBe(true);
    await promoteModel(db, { projectId, alias: 'staging', checkpointId: broken.id });
    const kept = (l: (typeof logs)[number]) => l.msg.startsWith('alias kept on its current model') && l.modelId === broken.id;
    await expect.poll(() => logs.some(kept), { timeout: 10_000 }).toBe(true);
    await sleep(200);
    stop = true;
    await Promise.all(loops);
    expect(errors).toEqual([]);
    for (const seen of spaces) {
      // Each caller saw A, then B, never back, and never anything else.
      const switched = seen.indexOf(spaceB);
      expect(seen.slice(0, switched).every((s) => s === spaceA) && seen.slice(switched).every((s) => s === spaceB)).toBe(true);
      expect(switched).toBeGreaterThan(0);
    }
    // Two models at most (EMBED_MAX_MODELS): the one-channel model, least recently used, made room for B.
    expect(main.loadedModelIds.sort()).toEqual([a.id, b.id].sort());
  });
});

describe('EmbedStream', () => {
  it('answers each request in order, and fails the stream naming the request that is bad', async () => {
    const images = await pngs(randomPixels(3, 3, 15), 3);
    const run = (requests: EmbedRequest[]) =>
      new Promise<{ responses: EmbedResponse[]; error?: grpc.ServiceError }>((resolve) => {
        const responses: EmbedResponse[] = [];
        const call = client.embedStream();
        call.on('data', (r: EmbedResponse) => responses.push(r));
        call.on('error', (error: grpc.ServiceError) => resolve({ responses, error }));
        call.on('end', () => resolve({ responses }));
        for (const r of requests) call.write(r);
        call.end();
      });
    const ok = await run(images.map((image, i) => ({ images: [image], requestId: `r${i}`, normalize: true })));
    expect(ok.error).toBeUndefined();
    expect(ok.responses.map((r) => [r.requestId, r.count, r.modelId])).toEqual([0, 1, 2].map((i) => [`r${i}`, 1, a.id]));
    const bad = await run([{ images: [images[0]!], requestId: 'r0' }, { images: [Buffer.from('x')], requestId: 'r1' }]);
    expect(bad.responses.map((r) => r.requestId)).toEqual(['r0']);
    expect(bad.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(bad.error?.details).toMatch(/^request r1: images\[0\] cannot be decoded/);
  });
});

describe('models, health, reflection', () => {
  it('lists promoted models with their transform and dimensions', async () => {
    await promoteModel(db, { projectId, alias: 'gray', checkpointId: gray.id });
    const models = await client.listModels();
    expect(models.find((m) => m.id === gray.id)).toMatchObject({
      aliases: ['gray'],
      transform: grey,
      encoder: { arch: 'resnet18', width: 4, inChannels: 1, dim: 8 },
      backboneDim: 32,
      headDim: 8,
      embeddingSpaceId: embeddingSpaceId(gray.jobId, 1),
    });
    expect(await client.getModel({ alias: 'production' })).toMatchObject({ id: a.id, aliases: ['production'] });
    expect(await codeOf(client.getModel({ modelId: 'ckpt_nope' }))).toMatch(/^NOT_FOUND/);
  });

  it('answers health checks and reflection', async () => {
    expect(await healthOf(main.address, '')).toBe('SERVING');
    expect(await healthOf(main.address, 'moco.v1.EmbeddingService')).toBe('SERVING');
    const reflectionProto = path.join(
      path.dirname(createRequire(import.meta.url).resolve('@grpc/reflection')),
      '../proto/grpc/reflection/v1/reflection.proto',
    );
    const Reflection = loadService(reflectionProto, 'grpc.reflection.v1.ServerReflection');
    const r = new Reflection(main.address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Function>;
    const services = await new Promise<string[]>((resolve, reject) => {
      type Reply = { listServicesResponse: { service: { name: string }[] } };
      const call = r.ServerReflectionInfo!() as grpc.ClientDuplexStream<object, Reply>;
      call.on('data', (m: Reply) => resolve(m.listServicesResponse.service.map((s) => s.name)));
      call.on('error', reject);
      call.write({ listServices: '' });
      call.end();
    });
    r.close();
    expect(services).toEqual(expect.arrayContaining(['moco.v1.EmbeddingService', 'grpc.health.v1.Health']));
  });
});

// On the slow embedder: batches of up to 4 images, waiting up to 5 s for a batch to fill.
describe('micro-batching, deadlines, polling, shutdown', () => {
  it('merges concurrent requests into full batches', async () => {
    const images = await pngs(randomPixels(8, 3, 16), 3);
    const before = { ...slow.stats, recentBatchSizes: [...slow.stats.recentBatchSizes] };
    const responses = await Promise.all(images.map((image) => slowClient.embed({ images: [image] })));
    expect(responses.every((r) => r.count === 1)).toBe(true);
    expect(slow.stats.forwardPasses - before.forwardPasses).toBe(2);
    expect(slow.stats.recentBatchSizes.slice(before.recentBatchSizes.length)).toEqual([4, 4]);
  });

  it('drops a request whose deadline passed before its batch ran', async () => {
    const images = await pngs(randomPixels(4, 3, 17), 3);
    const before = { ...slow.stats };
    const late = slowClient.embed({ images: [images[0]!] }, { deadline: Date.now() + 200 });
    expect(await codeOf(late)).toMatch(/^DEADLINE_EXCEEDED/);
    // A full batch makes the batcher run; the expired request is dropped, not embedded.
    expect((await slowClient.embed({ images })).count).toBe(4);
    expect(slow.stats.dropped - before.dropped).toBe(1);
    expect(slow.stats.imagesEmbedded - before.imagesEmbedded).toBe(4);
  });

  it('picks up an alias moved without a notification by polling', async () => {
    const images = await pngs(randomPixels(4, 3, 18), 3);
    await promoteModel(db, { projectId, alias: 'canary', checkpointId: a.id });
    expect((await slowClient.embed({ alias: 'canary', images })).modelId).toBe(a.id);
    await db.modelAlias.update({ where: { projectId_alias: { projectId, alias: 'canary' } }, data: { checkpointId: b.id } });
    await expect.poll(async () => (await slowClient.embed({ alias: 'canary', images })).modelId, { timeout: 10_000 }).toBe(b.id);
  });

  it('on close: turns NOT_SERVING, finishes the call in flight, then refuses calls', async () => {
    const [image] = await pngs(randomPixels(1, 3, 19), 3);
    const started = Date.now();
    const inFlight = slowClient.embed({ images: [image!] }); // waits in the batcher for company
    await expect.poll(() => slow.loadedModelIds.length).toBeGreaterThan(0);
    await sleep(200);
    const closing = slow.close();
    expect(await healthOf(slow.address, '')).toBe('NOT_SERVING');
    expect((await inFlight).count).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000); // run at shutdown, not after the 5 s batching delay
    await closing;
    expect(await codeOf(slowClient.embed({ images: [image!] }))).toMatch(/^UNAVAILABLE/);
  });
});
