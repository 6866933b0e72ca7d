import { status, type ServiceError } from '@grpc/grpc-js';
import { createDb, createTestDatabase, type Db, type TestDatabase } from '@moco/db';
import { createEmbeddingClient, promoteModel, type EmbeddingClient } from '@moco/models';
import { tf } from '@moco/moco';
import { createObjectStore, startTestS3Server, type TestS3Server } from '@moco/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCheckpoint, createProjectWithKey, tinyConfig } from '../../apps/embedder/src/testing.js';
import { solidImage } from '../../libs/data/src/test-fixtures.js';
import { s3EnvOf, startEmbedderProcess, type EmbedderProcess } from '../support/embedder-process.js';
import { scrape } from '../support/prometheus.js';
import { waitFor } from '../support/wait.js';

// The embedder's Prometheus metrics, read from a real embedder process's ops server after real
// gRPC calls over a socket: answered and refused calls, forward passes, models loaded and reloaded.

const SIZE = 16;

let tdb: TestDatabase;
let db: Db;
let s3: TestS3Server;
let embedder: EmbedderProcess;
let client: EmbeddingClient;
let opsUrl: string;

beforeAll(async () => {
  await tf.setBackend('cpu');
  [tdb, s3] = await Promise.all([createTestDatabase(), startTestS3Server()]);
  db = createDb(tdb.url);
  const store = createObjectStore({ kind: 's3', ...s3 });
  const project = await createProjectWithKey(db);
  for (const [alias, seed] of [['a', 1], ['b', 2]] as const) {
    const checkpoint = await createCheckpoint(db, store, {
      projectId: project.projectId,
      config: tinyConfig(3),
      transform: { size: SIZE, channels: 3, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
      seed,
    });
    checkpoint.moco.dispose();
    await promoteModel(db, { projectId: project.projectId, alias, checkpointId: checkpoint.id });
  }
  embedder = await startEmbedderProcess({
    DATABASE_URL: tdb.url,
    ...s3EnvOf(s3),
    EMBED_OPS_PORT: '0',
    EMBED_THREADS: '1',
    // One model at a time: using the other alias evicts it, and coming back reloads it.
    EMBED_MAX_MODELS: '1',
    // Long enough that concurrent calls share a forward pass.
    EMBED_MAX_DELAY_MS: '50',
  });
  opsUrl = await waitFor('the ops server', async () => {
    const line = embedder.logs.find((l) => l.includes('operations endpoints listening'));
    return line && (JSON.parse(line) as { ops_url: string }).ops_url;
  });
  client = createEmbeddingClient(embedder.address, { apiKey: project.apiKey });
}, 180_000);

afterAll(async () => {
  client?.close();
  await embedder?.stop();
  await db?.$disconnect();
  await Promise.all([tdb?.drop(), s3?.close()]);
});

describe('embedder metrics', () => {
  it('counts calls by method and code, their latency, forward passes, images, and models loaded and reloaded', async () => {
    const image = await solidImage(SIZE, SIZE, 3, 128);
    const embed = (alias: string, images: number) => client.embed({ alias, images: Array.from({ length: images }, () => image) });
    const before = await scrape(opsUrl);
    expect(before.get('moco_embedder_models_loaded')).toBe(0);
    expect(before.get('moco_embedder_model_loads_total{kind="load"}')).toBe(0);

    // Three concurrent calls on model a (2 + 3 + 1 images), then b (evicts a), then a again (a reload).
    await Promise.all([embed('a', 2), embed('a', 3), embed('a', 1)]);
    await embed('b', 4);
    await embed('a', 1);
    const refused = await embed('no-such-alias', 1).then(
      () => null,
      (error: ServiceError) => error.code,
    );
    expect(refused).toBe(status.NOT_FOUND);

    const m = await scrape(opsUrl);
    expect(m.get('moco_embedder_requests_total{method="Embed",code="OK"}')).toBe(5);
    expect(m.get('moco_embedder_requests_total{method="Embed",code="NOT_FOUND"}')).toBe(1);
    expect(m.get('moco_embedder_request_duration_seconds_count{method="Embed"}')).toBe(6);
    expect(m.get('moco_embedder_request_duration_seconds_sum{method="Embed"}')).toBeGreaterThan(0);
    const images = 2 + 3 + 1 + 4 + 1;
    expect(m.get('moco_embedder_images_embedded_total')).toBe(images);
    expect(m.get('moco_embedder_batch_images_sum')).toBe(images);
    // Every answered call went through one forward pass, alone or with others.
    const passes = m.get('moco_embedder_batch_images_count')!;
    expect(passes).toBeGreaterThanOrEqual(3);
    expect(passes).toBeLessThanOrEqual(5);
    expect(m.get('moco_embedder_queue_wait_seconds_count')).toBe(5);
    expect(m.get('moco_embedder_models_loaded')).toBe(1);
    expect(m.get('moco_embedder_model_loads_total{kind="load"}')).toBe(2);
    expect(m.get('moco_embedder_model_loads_total{kind="reload"}')).toBe(1);
  }, 120_000);
});
