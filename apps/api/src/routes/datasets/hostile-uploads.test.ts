import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { idxFile, solidImage, tarArchive } from '../../../../../libs/data/src/test-fixtures.js';
import type { CreatedKey } from '../../keys/key-service.js';
import { useTestApp } from '../../testing/test-app.js';
import { upload } from '../../testing/upload.js';

// MAX_UPLOAD_BYTES is 1 MiB and MAX_DATASET_BYTES 4 MiB in test apps.
const t = useTestApp();
let key: CreatedKey;
let png: Buffer;

beforeAll(async () => {
  key = await t.current.createKey('hostile');
  png = await solidImage(4, 4, 3, 100);
});

/** Nothing of a rejected upload remains: no row, no object, no temp file. */
async function expectNothingLeft(): Promise<void> {
  expect(await t.current.db.dataset.count()).toBe(0);
  expect(await t.current.objects('projects/')).toEqual([]);
  expect(await t.current.tempFiles()).toEqual([]);
}

describe('hostile and malformed uploads', () => {
  it.each([
    ['path traversal', () => tarArchive([{ name: 'cls/a.png', data: png }, { name: '../x.png', data: png }], true), 'path_traversal', /evil\.tgz:\.\.\/x\.png/],
    ['a symlink', () => tarArchive([{ name: 'cls/a.png', type: 'symlink', linkname: '/etc/passwd' }]), 'unsafe_entry', /evil\.tgz:cls\/a\.png/],
    ['a gzip bomb', () => tarArchive([{ name: 'cls/zeros.png', data: new Uint8Array(8 * 1024 * 1024) }], true), 'too_large', /evil\.tgz/],
    ['a zip bomb', async () => zipSync({ 'cls/zeros.png': new Uint8Array(8 * 1024 * 1024) }, { level: 9 }), 'too_large', /evil\.tgz/],
    ['garbage bytes', async () => Buffer.from('this is not an archive at all'), 'unsupported_format', /evil\.tgz/],
    ['a gzip of text', async () => gzipSync('just text'), 'unsupported_format', /evil\.tgz/],
    ['an undecodable image', () => tarArchive([{ name: 'cls/ok.png', data: png }, { name: 'cls/bad.png', data: 'not a png' }]), 'unreadable_image', /evil\.tgz:cls\/bad\.png/],
    ['an archive without images', () => tarArchive([{ name: 'notes/readme.txt', data: 'hello' }]), 'empty_dataset', /evil\.tgz/],
  ])('rejects %s with 422 and keeps nothing', async (_what, make, code, message) => {
    const body = await make();
    expect(body.length).toBeLessThan(t.current.config.MAX_UPLOAD_BYTES);
    const res = await upload(t.current, key.key, body, { filename: 'evil.tgz' });
    expect(res.status).toBe(422);
    expect(res.json.error).toMatchObject({ code: 'invalid_dataset', param: 'body', message: expect.stringMatching(message) });
    expect(res.json.error.details[0].code).toBe(code);
    expect(res.json.error.message).not.toContain(t.current.tempDir);
    await expectNothingLeft();
  });

  it.each([
    ['images of height 0', [1000, 0, 28]],
    ['images of width 0', [1000, 28, 0]],
    // More images than the image_count column holds: once a 500 from Postgres.
    ['more images than a dataset may hold', [3_000_000_000, 0, 28]],
  ])('rejects an idx header of %s with 422 naming the problem', async (_what, dims) => {
    const res = await upload(t.current, key.key, gzipSync(idxFile(dims, new Uint8Array(0))));
    expect(res.status).toBe(422);
    expect(res.json.error).toMatchObject({ code: 'invalid_dataset', param: 'body', message: expect.stringMatching(/at least one pixel/) });
    expect(res.json.error.details[0].code).toBe('bad_idx');
    await expectNothingLeft();
  });

  it('refuses uploads past MAX_CONCURRENT_UPLOADS with 503 and Retry-After, in the one error shape', async () => {
    const max = t.current.config.MAX_CONCURRENT_UPLOADS;
    // Uploads that send a first chunk, then hang until released.
    const releases: (() => void)[] = [];
    const pending = Array.from({ length: max }, () => {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(Buffer.from('not a dataset'));
          releases.push(() => controller.close());
        },
      });
      return upload(t.current, key.key, body);
    });
    // Each holds its slot once its spool file exists.
    while ((await t.current.tempFiles()).length < max) await new Promise((r) => setTimeout(r, 20));
    const refused = await upload(t.current, key.key, gzipSync(idxFile([1, 1, 1], Uint8Array.of(1))));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe(String(t.current.config.UPLOAD_RETRY_AFTER_S));
    expect(refused.json).toEqual({ error: { code: 'server_busy', message: expect.stringContaining('retry later'), param: null } });
    for (const release of releases) release();
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual(Array(max).fill(422));
    await expectNothingLeft();
  });

  it('rejects an empty body', async () => {
    const res = await upload(t.current, key.key, new Uint8Array(0));
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe('invalid_dataset');
    await expectNothingLeft();
  });

  it('rejects a declared oversize body with 413 before reading it', async () => {
    const body = new Uint8Array(t.current.config.MAX_UPLOAD_BYTES + 1);
    const res = await upload(t.current, key.key, body);
    expect(res.status).toBe(413);
    expect(res.json.error).toMatchObject({ code: 'payload_too_large', param: 'body' });
    await expectNothingLeft();
  });

  it('stops a streamed (chunked, no length) body at the limit with 413', async () => {
    const chunk = new Uint8Array(64 * 1024);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Twice the limit, streamed: the server must stop at the limit, not read it all.
        if (sent >= 2 * t.current.config.MAX_UPLOAD_BYTES) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const res = await upload(t.current, key.key, stream);
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    expect(res.json.error.code).toBe('payload_too_large');
    await expectNothingLeft();
  });
});
