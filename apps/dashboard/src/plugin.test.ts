import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboard } from './plugin.js';
import { PUBLIC_DIR } from './static-files.js';

let app: FastifyInstance;

beforeAll(async () => {
  app = Fastify();
  await app.register(dashboard, { prefix: '/admin' });
});

afterAll(() => app.close());

const get = (url: string, headers: Record<string, string> = {}) => app.inject({ url, headers });

describe('dashboard plugin', () => {
  it('serves the page under its prefix, with a trailing slash for its relative URLs', async () => {
    const bare = await get('/admin?x=1');
    expect(bare.statusCode).toBe(301);
    expect(bare.headers.location).toBe('/admin/?x=1');
    const page = await get('/admin/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.body).toContain('<script type="module" src="js/main.js"></script>');
  });

  it('gzips for clients that take it and answers 304 to a matching ETag', async () => {
    const plain = await get('/admin/vendor/uPlot.esm.js');
    expect(plain.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(plain.headers['content-encoding']).toBeUndefined();
    const gzipped = await get('/admin/vendor/uPlot.esm.js', { 'accept-encoding': 'gzip, br' });
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gzipped.rawPayload.length).toBeLessThan(plain.rawPayload.length / 3);
    expect(gunzipSync(gzipped.rawPayload).equals(plain.rawPayload)).toBe(true);
    const again = await get('/admin/vendor/uPlot.esm.js', { 'if-none-match': plain.headers.etag as string });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
  });

  it('serves nothing but its own files: no other node_modules file, no source, no traversal', async () => {
    for (const url of [
      '/admin/vendor/uPlot.cjs.js',
      '/admin/vendor/../../src/plugin.ts',
      '/admin/..%2fsrc%2fplugin.ts',
      '/admin/js/%2e%2e/%2e%2e/package.json',
      '/admin/node_modules/uplot/package.json',
    ]) {
      expect((await get(url)).statusCode, url).toBe(404);
    }
  });

  it('resolves every module the pages import', async () => {
    const files = (await readdir(path.join(PUBLIC_DIR, 'js'), { recursive: true })).filter((f) => f.endsWith('.js'));
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      const source = await readFile(path.join(PUBLIC_DIR, 'js', file), 'utf8');
      for (const [, specifier] of source.matchAll(/^import .* from '([^']+)';$/gm)) {
        const url = new URL(specifier!, `http://x/admin/js/${file}`).pathname;
        expect((await get(url)).statusCode, `${file} imports ${specifier}`).toBe(200);
      }
    }
  });
});
