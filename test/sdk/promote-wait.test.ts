import type { Embedder } from '@moco/embedder';
import { initBackend } from '@moco/moco';
import { MocoClient } from '@moco/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestApp } from '../../apps/api/src/testing/test-app.js';
import { createCheckpoint, tinyConfig } from '../../apps/embedder/src/testing.js';
import { encodeImage } from '../../libs/data/src/test-fixtures.js';
import { startAppEmbedder } from '../support/in-process-embedder.js';

// A promotion the SDK waits for: once promote({waitUntilServed}) resolves, the embedder answers the
// alias with the new model, not the one it served before (it moves an alias only after loading).

const transform = { size: 16, channels: 3 as const, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };

describe('promotion with waitUntilServed', () => {
  const t = useTestApp();
  let embedder: Embedder;
  let client: MocoClient;
  let checkpoints: string[];
  let png: Uint8Array;

  beforeAll(async () => {
    await initBackend({ prefer: 'cpu' });
    const { db, store } = t.current;
    const key = await t.current.createKey('promote-wait');
    checkpoints = [];
    for (const seed of [1, 2]) {
      const c = await createCheckpoint(db, store, { projectId: key.project_id, config: tinyConfig(3), transform, seed });
      c.moco.dispose();
      checkpoints.push(c.id);
    }
    embedder = await startAppEmbedder(t.current);
    client = new MocoClient({ baseUrl: t.current.url, apiKey: key.key, grpcAddress: embedder.address });
    png = await encodeImage(new Uint8Array(16 * 16 * 3).map((_, i) => (i * 37) % 256), { width: 16, height: 16, channels: 3 });
  });
  afterAll(async () => {
    client?.close();
    await embedder?.close();
  });

  it('resolves only once the embedder answers the alias with the promoted model', async () => {
    const [first, second] = checkpoints as [string, string];
    const a = await client.models.promote({ checkpoint_id: first, alias: 'production' }, { waitUntilServed: true });
    expect(a.id).toBe(first);
    expect((await client.embeddings.embed([png])).modelId).toBe(first);
    // The embedder now serves `first` for the alias from memory: moving it means loading `second`.
    const b = await client.models.promote({ checkpoint_id: second, alias: 'production' }, { waitUntilServed: true });
    expect((await client.embeddings.embed([png])).modelId).toBe(b.id);
    expect((await client.embeddings.embed([png], { modelId: first })).modelId).toBe(first);
  });

  it('needs a gRPC address', async () => {
    const rest = new MocoClient({ baseUrl: t.current.url, apiKey: 'mk_unused' });
    await expect(rest.models.promote({ checkpoint_id: checkpoints[0]!, alias: 'x' }, { waitUntilServed: true })).rejects.toThrow(/grpcAddress/);
  });
});
