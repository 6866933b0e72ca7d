import { buildApp } from '@moco/api';
import { embedderEnv, loadConfig } from '@moco/config';
import { encodeImage } from '../../libs/data/src/test-fixtures.js';
import { startEmbedder, type Embedder } from '@moco/embedder';
import { createEmbeddingClient, unpackVectors, type EmbeddingClient } from '@moco/models';
import { initBackend } from '@moco/moco';
import type { FastifyInstance } from 'fastify';
import { MocoClient } from '@moco/sdk';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { bearer, useTestApp } from '../../apps/api/src/testing/test-app.js';
import { createCheckpoint, tinyConfig } from '../../apps/embedder/src/testing.js';

// POST/GET /v1/models and POST /v1/embeddings: the REST API over real Postgres and S3, proxying to a
// real embedder over a gRPC socket.

const transform = { size: 16, channels: 3 as const, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };

describe('models and embeddings over REST', () => {
  const t = useTestApp();
  let embedder: Embedder;
  let grpc: EmbeddingClient;
  let api: FastifyInstance;
  let apiUrl: string;
  let key: string;
  let other: string;
  let checkpoints: string[];
  let png: Buffer;

  beforeAll(async () => {
    await initBackend({ prefer: 'cpu' });
    const { db, store, queue, config } = t.current;
    const created = await t.current.createKey('models');
    key = created.key;
    other = (await t.current.createKey('someone-else')).key;
    checkpoints = [];
    for (const seed of [1, 2]) {
      const c = await createCheckpoint(db, store, { projectId: created.project_id, config: tinyConfig(3), transform, seed });
      c.moco.dispose();
      checkpoints.push(c.id);
    }
    const log = pino({ level: 'silent' });
    embedder = await startEmbedder(loadConfig(z.object(embedderEnv), { EMBED_PORT: '0' }), {
      db,
      databaseUrl: config.DATABASE_URL,
      store,
      log,
    });
    grpc = createEmbeddingClient(embedder.address);
    api = await buildApp({ db, store, queue, config, logger: log, embedder: grpc });
    apiUrl = await api.listen({ host: '127.0.0.1', port: 0 });
    png = await encodeImage(new Uint8Array(16 * 16 * 3).map((_, i) => (i * 37) % 256), { width: 16, height: 16, channels: 3 });
  });

  afterAll(async () => {
    await api?.close();
    grpc?.close();
    await embedder?.close();
  });

  const call = (path: string, k: string, body?: unknown) =>
    fetch(`${apiUrl}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { ...bearer(k), ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, json: (await r.json()) as any }));

  it('promotes a checkpoint under an alias, moves it, and lists it', async () => {
    const first = await call('/v1/models', key, { checkpoint_id: checkpoints[0], alias: 'production' });
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ id: checkpoints[0], aliases: ['production'], transform });
    expect(first.json.embedding_space_id).toMatch(/^es_[0-9a-f]{32}$/);
    await call('/v1/models', key, { checkpoint_id: checkpoints[1], alias: 'staging' });
    const list = await call('/v1/models', key);
    expect(list.json.data.map((m: { id: string; aliases: string[] }) => [m.id, m.aliases])).toEqual([
      [checkpoints[1], ['staging']],
      [checkpoints[0], ['production']],
    ]);
  });

  it('refuses bad aliases and other projects\' checkpoints, naming the field', async () => {
    const bad = await call('/v1/models', key, { checkpoint_id: checkpoints[0], alias: 'Not Valid!' });
    expect(bad).toMatchObject({ status: 400, json: { error: { code: 'invalid_parameter', param: 'alias' } } });
    const foreign = await call('/v1/models', other, { checkpoint_id: checkpoints[0], alias: 'production' });
    expect(foreign).toMatchObject({ status: 404, json: { error: { code: 'not_found', param: 'checkpoint_id' } } });
    expect((await call('/v1/models', other)).json.data).toEqual([]);
  });

  it('embeds through the embedder: the same vectors as gRPC Embed', async () => {
    const rest = await call('/v1/embeddings', key, { images: [png.toString('base64'), png.toString('base64')], model: 'staging', output: 'head' });
    expect(rest.status).toBe(200);
    const direct = await grpc.embed({ alias: 'staging', images: [png, png], output: 'OUTPUT_HEAD', normalize: true }, { apiKey: key });
    expect(rest.json).toMatchObject({ model_id: checkpoints[1], alias: 'staging', output: 'head', normalized: true, dim: direct.dim });
    expect(rest.json.embedding_space_id).toBe(direct.embeddingSpaceId);
    const vectors = unpackVectors(direct).map((v) => Array.from(v));
    rest.json.data.forEach((v: number[], i: number) => v.forEach((x, j) => expect(x).toBeCloseTo(vectors[i]![j]!, 6)));
    const pinned = await call('/v1/embeddings', key, { images: [png.toString('base64')], model_id: checkpoints[0], normalize: false });
    expect(pinned.json).toMatchObject({ model_id: checkpoints[0], alias: null, output: 'backbone', normalized: false });
  });

  it('maps embedder errors to REST errors', async () => {
    const undecodable = await call('/v1/embeddings', key, { images: [png.toString('base64'), Buffer.from('not an image').toString('base64')] });
    expect(undecodable).toMatchObject({ status: 400, json: { error: { code: 'invalid_parameter', param: 'images.1' } } });
    const unknown = await call('/v1/embeddings', key, { images: [png.toString('base64')], model: 'nope' });
    expect(unknown).toMatchObject({ status: 404, json: { error: { code: 'not_found' } } });
    const foreign = await call('/v1/embeddings', other, { images: [png.toString('base64')], model_id: checkpoints[0] });
    expect(foreign.status).toBe(404);
    const noEmbedder = await fetch(`${t.current.url}/v1/embeddings`, {
      method: 'POST',
      headers: { ...bearer(key), 'content-type': 'application/json' },
      body: JSON.stringify({ images: [png.toString('base64')] }),
    });
    expect(noEmbedder.status).toBe(503);
    expect(await noEmbedder.json()).toMatchObject({ error: { code: 'embedder_unavailable' } });
  });

  it('the SDK promotes, lists and embeds over gRPC in batches and over REST', async () => {
    const sdk = new MocoClient({ baseUrl: apiUrl, apiKey: key, grpcAddress: embedder.address });
    try {
      const promoted = await sdk.models.promote({ checkpoint_id: checkpoints[0]!, alias: 'canary' });
      expect(promoted.aliases).toEqual(['canary', 'production']);
      expect((await sdk.models.list()).map((m) => m.id)).toContain(checkpoints[0]);
      const images = Array.from({ length: 5 }, () => png);
      const batched = await sdk.embeddings.embed(images, { model: 'canary', batchSize: 2, concurrency: 2 });
      const whole = await sdk.embeddings.embed(images, { model: 'canary' });
      expect(batched.vectors).toHaveLength(5);
      expect(batched).toMatchObject({ modelId: checkpoints[0], alias: 'canary', embeddingSpaceId: promoted.embedding_space_id });
      batched.vectors.forEach((v, i) => v.forEach((x, j) => expect(x).toBeCloseTo(whole.vectors[i]![j]!, 6)));
      const rest = await sdk.embeddings.create({ images: [png.toString('base64')], model: 'canary' });
      rest.data[0]!.forEach((x, j) => expect(x).toBeCloseTo(whole.vectors[0]![j]!, 6));
      await expect(sdk.embeddings.embed([png], { model: 'missing' })).rejects.toMatchObject({ code: 5 });
    } finally {
      sdk.close();
    }
  });
});
