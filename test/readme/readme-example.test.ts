import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { tarArchive } from '@moco/data';
import type { Embedder } from '@moco/embedder';
import { initBackend } from '@moco/moco';
import { transform } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestApp } from '../../apps/api/src/testing/test-app.js';
import { encodeImage } from '../../libs/data/src/test-fixtures.js';
import { startWorkerProcess, workerEnvFrom, type WorkerProcess } from '../support/worker-process.js';
import { startAppEmbedder } from '../support/in-process-embedder.js';

// Runs the README's SDK example as a user would, against a real API, worker and embedder: the SDK
// packed (`npm run sdk:package`), installed from its tarball into a project outside this
// repository, the example (TypeScript types stripped) run there with plain node. Only the addresses
// are replaced by this test's, and its files (photos.tar.gz, cat.png, dog.png) made here.

const ROOT = path.join(import.meta.dirname, '../..');
const run = promisify(execFile);

async function readmeExample(): Promise<string> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const match = /<!-- sdk-example -->\n```ts\n([\s\S]*?)```/.exec(readme);
  if (!match) throw new Error('README.md has no <!-- sdk-example --> block');
  return match[1]!;
}

/** A 16x16 PNG whose pixels follow the seed (two visibly different "classes"). */
function png(seed: number, cls: number): Promise<Buffer> {
  const pixels = new Uint8Array(16 * 16 * 3).map((_, i) => ((i * (7 + seed) + cls * 128 + ((i >> 4) % 2) * cls * 90) % 256));
  return encodeImage(pixels, { width: 16, height: 16, channels: 3 });
}

describe('the README SDK example', () => {
  const t = useTestApp({ MAX_UPLOAD_BYTES: String(16 * 1024 ** 2) });
  let worker: WorkerProcess;
  let embedder: Embedder;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'moco-readme-'));
    worker = startWorkerProcess({ ...workerEnvFrom(t.current.config), WORKER_CACHE_DIR: path.join(dir, 'cache') });
    await initBackend({ prefer: 'wasm' });
    embedder = await startAppEmbedder(t.current);
    const entries = [];
    for (let i = 0; i < 64; i++) entries.push({ name: `photos/${i % 2 ? 'dog' : 'cat'}/${i}.png`, data: await png(i, i % 2) });
    await writeFile(path.join(dir, 'photos.tar.gz'), await tarArchive(entries, true));
    await writeFile(path.join(dir, 'cat.png'), await png(100, 0));
    await writeFile(path.join(dir, 'dog.png'), await png(101, 1));
    // The user's project: the SDK's tarball and nothing of this repository.
    const packed = await run(process.execPath, [path.join(ROOT, 'libs/sdk/scripts/build-package.mjs'), path.join(dir, 'sdk-package')]);
    const { tarball } = JSON.parse(packed.stdout.trim().split('\n').at(-1)!) as { tarball: string };
    await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'readme-example', private: true, type: 'module' }));
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--silent', tarball], { cwd: dir, timeout: 180_000 });
    const installed = await run('du', ['-sk', path.join(dir, 'node_modules')]);
    const packages = await run('npm', ['ls', '--all', '--parseable'], { cwd: dir });
    console.log(`@moco/sdk installed: ${Math.round(Number(installed.stdout.split('\t')[0]) / 1024)} MB, ${packages.stdout.trim().split('\n').length - 1} packages`);
  }, 240_000);
  afterAll(async () => {
    await worker?.stop();
    await embedder?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs as written and prints the embeddings of two images', async () => {
    const code = (await readmeExample())
      .replace("'http://127.0.0.1:8080'", JSON.stringify(t.current.url))
      .replace("'127.0.0.1:50051'", JSON.stringify(embedder.address));
    const script = path.join(dir, 'example.mjs');
    await writeFile(script, (await transform(code, { loader: 'ts', format: 'esm' })).code);
    const key = await t.current.createKey('readme');
    const { stdout } = await run(process.execPath, [script], {
      cwd: dir,
      env: { ...process.env, MOCO_KEY: key.key },
      timeout: 240_000,
    }).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`${err.message}\n${err.stderr ?? ''}\n${worker.logs.slice(-10).join('\n')}`);
    });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(result).toMatchObject({ status: 'succeeded', vectors: 2, dim: 64 });
    expect(result.embeddingSpaceId).toMatch(/^es_[0-9a-f]{32}$/);
  });
});
