import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export const PUBLIC_DIR = fileURLToPath(new URL('../public', import.meta.url));

const require = createRequire(import.meta.url);
/** The chart library, served from node_modules: exactly the two files the pages load, nothing else of it. */
const VENDOR_FILES: Record<string, string> = {
  'vendor/uPlot.esm.js': require.resolve('uplot/dist/uPlot.esm.js'),
  'vendor/uPlot.min.css': require.resolve('uplot/dist/uPlot.min.css'),
};

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export interface StaticFile {
  type: string;
  body: Buffer;
  /** Sent instead of body to clients that accept gzip (the chart library shrinks to a quarter). */
  gzipped: Buffer;
  etag: string;
}

async function load(file: string): Promise<StaticFile> {
  const type = CONTENT_TYPES[path.extname(file)];
  // Only known kinds are served: a stray file dropped into public/ fails the start instead of going out as guesswork.
  if (!type) throw new Error(`dashboard: no content type for ${file}`);
  const body = await readFile(file);
  return { type, body, gzipped: gzipSync(body), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/**
 * Every file the dashboard serves, by URL path relative to its prefix: public/ and the vendor files,
 * read once into memory (about 200 kB). Requests are looked up in this map, never joined onto a
 * folder, so no URL can reach another file.
 */
export async function loadStaticFiles(): Promise<Map<string, StaticFile>> {
  const sources = new Map(Object.entries(VENDOR_FILES));
  for (const entry of await readdir(PUBLIC_DIR, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    sources.set(path.relative(PUBLIC_DIR, file).split(path.sep).join('/'), file);
  }
  const files = new Map<string, StaticFile>();
  await Promise.all([...sources].map(async ([url, file]) => files.set(url, await load(file))));
  return files;
}
