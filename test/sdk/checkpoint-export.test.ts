import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { exportOnnx, exportPytorch } from '@moco/moco/export';
import { MocoClient } from '@moco/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobWithStoredCheckpoint } from '../../apps/api/src/testing/fixtures.js';
import { useTestApp } from '../../apps/api/src/testing/test-app.js';

// checkpoints.export and exportToFile against the real API (Postgres, S3 protocol).

describe('MocoClient checkpoints.export', () => {
  const t = useTestApp();
  let client: MocoClient;
  let checkpoint: { id: string; state: Uint8Array };
  let dir: string;
  const preprocessing = { size: 28, channels: 1 as const, mean: [0.5], std: [0.25] };

  beforeAll(async () => {
    const key = await t.current.createKey('sdk-export');
    client = new MocoClient({ baseUrl: t.current.url, apiKey: key.key, retryDelayMs: 10 });
    checkpoint = await jobWithStoredCheckpoint(t.current, key, 3);
    dir = await mkdtemp(path.join(tmpdir(), 'moco-sdk-export-'));
  }, 60_000);
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('streams an ONNX export with its size, checksum and name', async () => {
    const download = await client.checkpoints.export(checkpoint.id, { format: 'onnx', output: 'head' });
    const body = await buffer(download.body);
    expect(body.equals(Buffer.from(exportOnnx(checkpoint.state, { output: 'head', preprocessing })))).toBe(true);
    expect(download).toMatchObject({ bytes: body.length, sha256: createHash('sha256').update(body).digest('hex'), filename: `${checkpoint.id}-head.onnx` });
  });

  it('writes a PyTorch export to a file, leaving nothing else behind', async () => {
    const file = path.join(dir, 'checkpoint_0001.pth.tar');
    const saved = await client.checkpoints.exportToFile(checkpoint.id, file, { format: 'pytorch' });
    const expected = Buffer.from(exportPytorch(checkpoint.state, { preprocessing }));
    expect((await readFile(file)).equals(expected)).toBe(true);
    expect(saved).toMatchObject({ path: file, bytes: expected.length });
    expect(await readdir(dir)).toEqual(['checkpoint_0001.pth.tar']);
  });

  it('throws the API error for a checkpoint it cannot see, and writes no file', async () => {
    const file = path.join(dir, 'missing.onnx');
    await expect(client.checkpoints.exportToFile('ckpt_00000000000000000000000000000000', file)).rejects.toMatchObject({ status: 404, code: 'not_found' });
    expect(await readdir(dir)).not.toContain('missing.onnx');
  });
});
