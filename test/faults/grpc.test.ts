import { setTimeout as sleep } from 'node:timers/promises';
import { status } from '@grpc/grpc-js';
import { createDb, createTestDatabase, hashApiKey, type Db, type TestDatabase } from '@moco/db';
import { promoteModel, unpackVectors, type CheckpointTransform } from '@moco/models';
import { Rng, tf, type Moco } from '@moco/moco';
import { createObjectStore, startTestS3Server, type TestS3Server } from '@moco/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCheckpoint, createProjectWithKey, tinyConfig } from '../../apps/embedder/src/testing.js';
import { encodeImage, solidImage } from '../../libs/data/src/test-fixtures.js';
import { s3EnvOf, startEmbedderProcess, type EmbedderProcess } from '../support/embedder-process.js';
import { metadataOf, RawGrpcClient, vanishMidCall, type CallResult } from '../support/grpc-raw.js';
import { decodeEmbedResponse, encodeEmbedRequest, PATHS, randomCase, type FaultCase, type Fixtures } from './grpc-cases.js';

// The gRPC embedder, run as its own process, against hostile and careless clients: every method, every
// request field, every kind of credentials, streams abandoned every way, seeded random combinations.
// GRPC_FAULT_SEED replays a run; GRPC_FAULT_CALLS scales it up for a soak.

const SEED = Number(process.env.GRPC_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CALLS = Number(process.env.GRPC_FAULT_CALLS ?? 1000);
const CONCURRENCY = 6;
const SIZE = 16;
const rgb: CheckpointTransform = { size: SIZE, channels: 3, mean: [0.5, 0.4, 0.3], std: [0.25, 0.2, 0.3] };
const LIMITS = { maxImages: 256, maxMessageBytes: 8 * 1024 ** 2, requestPixels: 4 * 1024 ** 2 };

let tdb: TestDatabase;
let db: Db;
let s3: TestS3Server;
let embedder: EmbedderProcess;
let raw: RawGrpcClient;
let fixtures: Fixtures;
let projectId: string;
const mocos: Moco[] = [];

const bearer = (apiKey: string) => metadataOf({ authorization: `Bearer ${apiKey}` });
const embed = (request: Parameters<typeof encodeEmbedRequest>[0], apiKey: string, deadlineMs = 30_000) =>
  raw.unary(PATHS.embed, encodeEmbedRequest(request), bearer(apiKey), deadlineMs);
const describeResult = (r: CallResult) => `${status[r.code]}: ${r.details}`;

/** Fails with the embedder's last log lines when its process has gone. */
function expectAlive(): void {
  expect(embedder.proc.exitCode ?? embedder.proc.signalCode, `the embedder exited (seed ${SEED}):\n${embedder.logs.slice(-20).join('\n')}`).toBeNull();
}

/** A valid Embed call gives the library's own forward pass of the model. */
async function expectServesCorrectly(): Promise<void> {
  expectAlive();
  const rng = new Rng(7);
  const values = Float32Array.from({ length: 2 * SIZE * SIZE * 3 }, () => rng.normal());
  const result = await embed({ tensor: { shape: [2, SIZE, SIZE, 3], data: Buffer.from(values.buffer), preprocessed: true }, normalize: false }, fixtures.projects[0]!.apiKey);
  expect(describeResult(result)).toBe('OK: ');
  const x = tf.tensor4d(values, [2, SIZE, SIZE, 3]);
  const reference = await mocos[0]!.query.embed(x, { output: 'backbone', normalize: false });
  x.dispose();
  const vectors = unpackVectors(decodeEmbedResponse(result.responses[0]!));
  vectors.forEach((v, i) => v.forEach((value, j) => expect(Math.abs(value - reference.data[i * reference.dim + j]!)).toBeLessThan(1e-4)));
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  [tdb, s3] = await Promise.all([createTestDatabase(), startTestS3Server()]);
  db = createDb(tdb.url);
  const store = createObjectStore({ kind: 's3', ...s3 });
  const projects = [];
  for (const seed of [1, 2]) {
    const project = await createProjectWithKey(db);
    const checkpoint = await createCheckpoint(db, store, { projectId: project.projectId, config: tinyConfig(3), transform: rgb, seed });
    await promoteModel(db, { projectId: project.projectId, alias: 'production', checkpointId: checkpoint.id });
    mocos.push(checkpoint.moco);
    projects.push({ apiKey: project.apiKey, modelId: checkpoint.id });
    projectId ??= project.projectId;
  }
  const revoked = await createProjectWithKey(db);
  await db.apiKey.updateMany({ where: { projectId: revoked.projectId }, data: { revokedAt: new Date() } });

  const rng = new Rng(SEED);
  const pixels = (h: number, w: number, c: 1 | 3) => new Uint8Array(h * w * c).map(() => rng.int(256));
  const good = await Promise.all([
    encodeImage(pixels(SIZE, SIZE, 3), { width: SIZE, height: SIZE, channels: 3 }),
    encodeImage(pixels(30, 40, 3), { width: 40, height: 30, channels: 3 }),
    encodeImage(pixels(SIZE, SIZE, 1), { width: SIZE, height: SIZE, channels: 1 }),
    encodeImage(pixels(SIZE, SIZE, 3), { width: SIZE, height: SIZE, channels: 3 }, 'jpeg'),
  ]);
  fixtures = {
    projects,
    revokedKey: revoked.apiKey,
    images: {
      good,
      mega: await solidImage(1024, 1024, 1, 0),
      giant: await solidImage(4096, 4096, 1, 0),
      truncated: good[1]!.subarray(0, Math.floor(good[1]!.length / 2)),
    },
    limits: LIMITS,
    size: SIZE,
    channels: 3,
    dims: { OUTPUT_BACKBONE: 32, OUTPUT_HEAD: 8 },
  };

  embedder = await startEmbedderProcess({
    DATABASE_URL: tdb.url,
    ...s3EnvOf(s3),
    EMBED_MAX_IMAGES: String(LIMITS.maxImages),
    EMBED_MAX_MESSAGE_BYTES: String(LIMITS.maxMessageBytes),
    EMBED_MAX_REQUEST_PIXELS: String(LIMITS.requestPixels),
    EMBED_MAX_DECODING_PIXELS: String(2 * LIMITS.requestPixels),
    EMBED_MAX_DELAY_MS: '2',
    EMBED_THREADS: '1',
    // Long enough that only a notification can end a cached key's life within the test.
    EMBED_KEY_CACHE_S: '600',
  });
  raw = new RawGrpcClient(embedder.address, 2 * LIMITS.maxMessageBytes);
}, 180_000);

afterAll(async () => {
  raw?.close();
  await embedder?.stop('SIGKILL');
  for (const m of mocos) m.dispose();
  await db?.$disconnect();
  await Promise.all([tdb?.drop(), s3?.close()]);
});

describe('gRPC embedder faults', () => {
  it('answers EmbedStream without a valid key UNAUTHENTICATED, even with no message sent, and lives on', async () => {
    const noKey = await raw.stream(PATHS.embedStream, [], { metadata: metadataOf({}), deadlineMs: 10_000, halfClose: false });
    expect(describeResult(noKey)).toMatch(/^UNAUTHENTICATED/);
    const wrongKey = await raw.stream(PATHS.embedStream, [], { metadata: bearer('sk_wrong'), deadlineMs: 10_000, halfClose: true });
    expect(describeResult(wrongKey)).toMatch(/^UNAUTHENTICATED/);
    // Time for a process that is going to die of it to die.
    await sleep(500);
    await expectServesCorrectly();
  }, 60_000);

  it('refuses non-finite tensors, and finite ones whose vectors overflow, INVALID_ARGUMENT naming the field and image', async () => {
    const key = fixtures.projects[0]!.apiKey;
    const shape = [2, SIZE, SIZE, 3];
    const values = new Float32Array(2 * SIZE * SIZE * 3).fill(100);
    values[SIZE * SIZE * 3 + 5] = Number.POSITIVE_INFINITY;
    expect(describeResult(await embed({ tensor: { shape, data: Buffer.from(values.buffer) } }, key))).toMatch(/^INVALID_ARGUMENT: tensor\.data: image 1 holds a non-finite value \(Infinity\)/);
    const huge = new Float32Array(2 * SIZE * SIZE * 3).fill(-3e38);
    expect(describeResult(await embed({ tensor: { shape, data: Buffer.from(huge.buffer), preprocessed: true } }, key))).toMatch(
      /^INVALID_ARGUMENT: tensor\.data: image 0 gives a non-finite vector/,
    );
  }, 60_000);

  it('refuses a request whose images decode past the pixel budget from their headers, before decoding them', async () => {
    // The reported attack: 256 PNGs of 4096x4096 in 4 MB, 4 GiB of pixels once decoded.
    const images = Array<Buffer>(256).fill(fixtures.images.giant);
    const started = performance.now();
    const result = await embed({ images }, fixtures.projects[0]!.apiKey, 60_000);
    expect(describeResult(result)).toMatch(/^RESOURCE_EXHAUSTED: the images decode to 4294967296 pixels in all; the limit per request is 4194304/);
    // Refused from the headers, not after decoding 256 large images (tens of seconds here).
    expect(performance.now() - started).toBeLessThan(10_000);
    await expectServesCorrectly();
  }, 90_000);

  it('refuses a cached API key within a second of its revocation, deletion or expiry by a rotation', async () => {
    for (const change of ['revoke', 'delete', 'expire'] as const) {
      const { apiKey } = await createProjectWithKey(db);
      const request = { tensor: { shape: [1, 1, 1, 3], data: Buffer.alloc(12) }, modelId: fixtures.projects[0]!.modelId };
      // Cached now (NOT_FOUND: the key is valid, the model is another project's).
      expect(describeResult(await embed(request, apiKey))).toMatch(/^NOT_FOUND/);
      const where = { secretHash: hashApiKey(apiKey) };
      if (change === 'revoke') await db.apiKey.update({ where, data: { revokedAt: new Date() } });
      else if (change === 'expire') await db.apiKey.update({ where, data: { expiresAt: new Date(Date.now() + 100) } });
      else await db.apiKey.delete({ where });
      const changed = performance.now();
      let result: CallResult;
      do result = await embed(request, apiKey);
      while (result.code !== status.UNAUTHENTICATED && performance.now() - changed < 5_000);
      expect(describeResult(result), change).toMatch(/^UNAUTHENTICATED/);
      expect(performance.now() - changed, change).toBeLessThan(1_000);
    }
  }, 60_000);

  it('drops every cached key when its LISTEN connection is lost (a missed revocation does not keep a key alive)', async () => {
    const { apiKey } = await createProjectWithKey(db);
    const request = { tensor: { shape: [1, 1, 1, 3], data: Buffer.alloc(12) }, modelId: fixtures.projects[0]!.modelId };
    expect(describeResult(await embed(request, apiKey))).toMatch(/^NOT_FOUND/);
    const killed = await db.$queryRaw<{ pid: number }[]>`
      SELECT pg_terminate_backend(pid) AS ok, pid FROM pg_stat_activity
      WHERE datname = current_database() AND query ILIKE 'LISTEN moco_api_keys%'`;
    expect(killed.length).toBe(1);
    // Revoked while the embedder is not listening: no notification reaches it.
    await db.apiKey.update({ where: { secretHash: hashApiKey(apiKey) }, data: { revokedAt: new Date() } });
    const revoked = performance.now();
    let result: CallResult;
    do result = await embed(request, apiKey);
    while (result.code !== status.UNAUTHENTICATED && performance.now() - revoked < 5_000);
    expect(describeResult(result)).toMatch(/^UNAUTHENTICATED/);
    // At once, not after the listener's reconnection (a second later at the earliest).
    expect(performance.now() - revoked).toBeLessThan(1_000);
    await expectServesCorrectly();
  }, 60_000);

  it('answers undecodable messages, impossible model names and huge echoed strings with client-error statuses', async () => {
    const key = fixtures.projects[0]!.apiKey;
    const image = { images: [fixtures.images.good[0]!] };
    // Field 15 of wire type 7, which does not exist: protobuf cannot skip it.
    expect(describeResult(await raw.unary(PATHS.embed, Buffer.from([0x7f, 1, 2]), bearer(key), 30_000))).toMatch(/^INVALID_ARGUMENT: the request message does not decode/);
    // Postgres refuses NUL in text: such names must not reach it.
    expect(describeResult(await embed({ ...image, alias: 'a\u0000' }, key))).toMatch(/^NOT_FOUND/);
    expect(describeResult(await embed({ ...image, modelId: 'ckpt_\u0000' }, key))).toMatch(/^NOT_FOUND/);
    // A status's details travel in a trailer: a 100 kB alias or request id echoed there would break it.
    const long = await embed({ ...image, alias: 'a'.repeat(4_000_000) }, key);
    expect(describeResult(long)).toMatch(/^NOT_FOUND: no model has the alias "a+\.\.\.$/);
    const streamed = await raw.stream(PATHS.embedStream, [encodeEmbedRequest({ images: [Buffer.from('nope')], requestId: 'r'.repeat(4_000_000) })], {
      metadata: bearer(key),
      deadlineMs: 30_000,
      halfClose: true,
    });
    expect(describeResult(streamed)).toMatch(/^INVALID_ARGUMENT: request r+\.\.\.$/);
  }, 60_000);

  it(`survives ${CALLS} seeded random calls with a clean status each`, async () => {
    console.log(`gRPC fault run: GRPC_FAULT_SEED=${SEED} GRPC_FAULT_CALLS=${CALLS}`);
    const rng = new Rng(SEED);
    const codes: Record<string, number> = {};
    const problems: string[] = [];
    let done = 0;
    const run = async (c: FaultCase) => {
      if (c.kind === 'vanish') {
        await vanishMidCall(embedder.address, c.path, c.metadata, c.messages[0]!, 5 + Math.floor(c.messages[0]!.length / 2));
        codes['(vanished)'] = (codes['(vanished)'] ?? 0) + 1;
        return;
      }
      const metadata = metadataOf(c.metadata);
      const result =
        c.kind === 'unary'
          ? await raw.unary(c.path, c.messages[0]!, metadata, c.deadlineMs)
          : await raw.stream(c.path, c.messages, { metadata, deadlineMs: c.deadlineMs, halfClose: c.halfClose ?? true, cancelAfter: c.cancelAfter });
      codes[status[result.code]] = (codes[status[result.code]] ?? 0) + 1;
      const problem = judge(c, result);
      if (problem) problems.push(`${c.name} -> ${problem}`);
    };
    const started = performance.now();
    while (done < CALLS) {
      // Made a batch at a time (an oversize case holds megabytes), in one seeded sequence.
      const batch = Array.from({ length: Math.min(CONCURRENCY * 10, CALLS - done) }, () => randomCase(rng, fixtures));
      const queue = [...batch];
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        for (let c = queue.shift(); c; c = queue.shift()) await run(c);
      }));
      done += batch.length;
      expectAlive();
      expect(problems, `seed ${SEED} (GRPC_FAULT_SEED=${SEED} replays it)`).toEqual([]);
    }
    await expectServesCorrectly();
    const seconds = (performance.now() - started) / 1000;
    console.log(JSON.stringify({ grpcFaults: { seed: SEED, calls: done, seconds: Math.round(seconds), codes, crashes: 0 } }));
  }, 600_000);
});

/** What is wrong with how a call ended, if anything. */
function judge(c: FaultCase, r: CallResult): string | undefined {
  if (!c.expect.includes(r.code)) return `${describeResult(r)}; expected ${c.expect.map((s) => status[s]).join(' or ')}`;
  if (c.responseCount !== undefined && r.code === status.OK && r.responses.length !== c.responseCount) {
    return `${r.responses.length} responses; expected ${c.responseCount}`;
  }
  if (!c.responses) return undefined;
  // Cut short (cancelled, refused) streams may have fewer; a clean end has them all.
  const complete = r.code === status.OK || r.code === status.DEADLINE_EXCEEDED;
  if (r.responses.length > c.responses.length || (complete && r.responses.length !== c.responses.length && !c.expect.includes(status.INVALID_ARGUMENT))) {
    return `${r.responses.length} responses; expected ${c.responses.length}`;
  }
  for (const [i, bytes] of r.responses.entries()) {
    const response = decodeEmbedResponse(bytes);
    const want = c.responses[i]!;
    const got = { modelId: response.modelId, count: response.count, dim: response.dim, requestId: response.requestId };
    if (JSON.stringify(got) !== JSON.stringify(want)) return `response ${i} is ${JSON.stringify(got).slice(0, 300)}; expected ${JSON.stringify(want).slice(0, 300)}`;
    if (response.vectors.length !== response.count * response.dim * 4) return `response ${i} has ${response.vectors.length} bytes of vectors`;
    if (unpackVectors(response).some((v) => v.some((x) => !Number.isFinite(x)))) return `response ${i} holds non-finite vectors`;
  }
  return undefined;
}
