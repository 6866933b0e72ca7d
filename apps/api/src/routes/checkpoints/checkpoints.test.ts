import { createHash } from 'node:crypto';
import { CHECKSUM_HEADER } from '@moco/contracts';
import { exportOnnx, exportPytorch } from '@moco/moco/export';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CreatedKey } from '../../keys/key-service.js';
import { insertCheckpoint, jobWithStoredCheckpoint } from '../../testing/fixtures.js';
import { bearer, useTestApp } from '../../testing/test-app.js';

const t = useTestApp();
let alice: CreatedKey;
let bob: CreatedKey;
let checkpoint: { id: string; state: Uint8Array };
let jobId: string;
// insertCheckpoint's evaluation transform.
const preprocessing = { size: 28, mean: [0.5], std: [0.25], channels: 1 as const };

/** A real HTTP download (not inject): what a client sees of the stream and its headers. */
async function download(key: CreatedKey, path: string) {
  const res = await fetch(`${t.current.url}${path}`, { headers: bearer(key) });
  return { res, body: new Uint8Array(await res.arrayBuffer()) };
}

beforeAll(async () => {
  [alice, bob] = await Promise.all([t.current.createKey('alice'), t.current.createKey('bob')]);
  ({ jobId, ...checkpoint } = await jobWithStoredCheckpoint(t.current, alice, 7));
}, 60_000);

describe('GET /v1/checkpoints/:id/export', () => {
  const cases = [
    { query: 'format=onnx&output=backbone', file: 'backbone.onnx', type: 'application/onnx', expected: () => exportOnnx(checkpoint.state, { output: 'backbone', preprocessing }) },
    { query: 'format=onnx&output=head', file: 'head.onnx', type: 'application/onnx', expected: () => exportOnnx(checkpoint.state, { output: 'head', preprocessing }) },
    { query: 'format=pytorch', file: 'pth.tar', type: 'application/octet-stream', expected: () => exportPytorch(checkpoint.state, { preprocessing }) },
    { query: 'format=mocotens', file: 'mocotens', type: 'application/octet-stream', expected: () => checkpoint.state },
  ];
  for (const c of cases) {
    it(`streams ${c.query} with its length, name and checksum, the same the second time`, async () => {
      const expected = c.expected();
      for (const attempt of ['converted', 'from the store']) {
        const { res, body } = await download(alice, `/v1/checkpoints/${checkpoint.id}/export?${c.query}`);
        expect(res.status, attempt).toBe(200);
        expect(Buffer.from(body).equals(Buffer.from(expected)), attempt).toBe(true);
        expect(res.headers.get('content-length')).toBe(String(expected.length));
        expect(res.headers.get('content-type')).toBe(c.type);
        expect(res.headers.get('content-disposition')).toMatch(new RegExp(`^attachment; filename="${checkpoint.id}[.-]${c.file.replace('.', '\\.')}"$`));
        expect(res.headers.get(CHECKSUM_HEADER)).toBe(createHash('sha256').update(body).digest('hex'));
      }
    }, 60_000);
  }

  it('keeps converted exports in the store beside the checkpoint, not under its checkpoints folder', async () => {
    const keys = await t.current.objects(`projects/${alice.project_id}/exports/${checkpoint.id}/`);
    expect(keys.map((k) => k.split('/').at(-1)).sort()).toEqual(
      ['backbone.onnx', 'backbone.onnx.sha256', 'encoder.pth.tar', 'encoder.pth.tar.sha256', 'head.onnx', 'head.onnx.sha256', 'state.mocotens.sha256'].sort(),
    );
  });

  it("answers 404 for another project's checkpoint or an unknown id, 400 for an unknown format", async () => {
    for (const path of [`/v1/checkpoints/${checkpoint.id}/export?format=onnx`, '/v1/checkpoints/ckpt_nope/export']) {
      const key = path.includes(checkpoint.id) ? bob : alice;
      const res = await t.current.app.inject({ url: path, headers: bearer(key) });
      expect(res.statusCode, path).toBe(404);
      expect(res.json().error.code).toBe('not_found');
    }
    // A row whose object is gone from the store: 404 naming it, not a 500.
    const orphan = await insertCheckpoint(t.current.db, { id: jobId, project_id: alice.project_id }, 8);
    for (const format of ['onnx', 'pytorch', 'mocotens']) {
      const gone = await t.current.app.inject({ url: `/v1/checkpoints/${orphan}/export?format=${format}`, headers: bearer(alice) });
      expect(gone.statusCode, format).toBe(404);
      expect(gone.json().error.message).toBe(`the stored file of checkpoint ${orphan} is missing`);
    }
    const bad = await t.current.app.inject({ url: `/v1/checkpoints/${checkpoint.id}/export?format=keras`, headers: bearer(alice) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'invalid_parameter', param: 'format' });
  });

  it('is what the checkpoint list links to, and no resource shows a storage path', async () => {
    const listed = await t.current.app.inject({ url: `/v1/jobs/${jobId}/checkpoints`, headers: bearer(alice) });
    const [resource] = listed.json().data;
    expect(resource).not.toHaveProperty('uri');
    expect(listed.body).not.toMatch(/s3:\/\/|file:\/\//);
    const { res, body } = await download(alice, resource.downloads.pytorch);
    expect(res.status).toBe(200);
    expect(body.length).toBe(exportPytorch(checkpoint.state, { preprocessing }).length);
  });
});
