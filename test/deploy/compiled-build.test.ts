import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { idxArchive } from '@moco/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { postDataset } from '../support/dataset-files.js';
import { startLocalStack, type LocalStack } from '../support/local-stack.js';
import { startNodeProcess, type NodeProcess } from '../support/node-process.js';

// The production images run `npm run build`'s output with plain node. Here: the build, then the
// compiled API, worker and embedder (no tsx anywhere: Node 20 refuses a .ts import outright) over
// real Postgres, Redis and a local store, through an upload (validated in a compiled child process),
// a training job (trained in a compiled child process) and the embedder's ops endpoints.

const ROOT = path.join(import.meta.dirname, '../..');
let out: string;
let app: string;
let stack: LocalStack;
const processes: NodeProcess[] = [];

/** node_modules for the compiled tree: the workspace packages are the compiled ones, the rest the repository's. */
async function linkNodeModules(): Promise<void> {
  const modules = path.join(app, 'node_modules');
  await mkdir(path.join(modules, '@moco'), { recursive: true });
  for (const entry of await readdir(path.join(ROOT, 'node_modules'))) {
    if (entry !== '@moco') await symlink(path.join(ROOT, 'node_modules', entry), path.join(modules, entry));
  }
  for (const dir of ['libs', 'apps']) {
    for (const pkg of await readdir(path.join(app, dir))) {
      const { name } = JSON.parse(await readFile(path.join(app, dir, pkg, 'package.json'), 'utf8')) as { name: string };
      await symlink(path.join('..', '..', dir, pkg), path.join(modules, name));
    }
  }
}

async function waitForLog(p: NodeProcess, pattern: RegExp, timeoutMs = 90_000): Promise<RegExpExecArray> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    for (const line of p.logs) {
      const m = pattern.exec(line);
      if (m) return m;
    }
    if (p.proc.exitCode !== null || Date.now() > end) throw new Error(`no ${pattern} in:\n${p.logs.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function start(entry: string, env: Record<string, string>): NodeProcess {
  const p = startNodeProcess(path.join(app, entry), { ...stack.env, ...env });
  processes.push(p);
  return p;
}

beforeAll(async () => {
  out = await mkdtemp(path.join(tmpdir(), 'moco-build-'));
  app = path.join(out, 'app');
  execFileSync(process.execPath, [path.join(ROOT, 'docker/build.mjs'), app], { stdio: 'pipe' });
  await linkNodeModules();
  stack = await startLocalStack();
}, 120_000);

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop('SIGKILL')));
  await stack?.close();
  await rm(out, { recursive: true, force: true });
});

describe('the compiled build', () => {
  it('holds no TypeScript, and has every entry point the compose file and the manifests start', async () => {
    const files = await readdir(app, { recursive: true });
    expect(files.filter((f) => f.endsWith('.ts') && !f.startsWith('node_modules'))).toEqual([]);
    const compose = parse(await readFile(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<string, { build?: unknown; command?: string[] }>;
    };
    const commands = Object.values(compose.services).filter((s) => s.build).map((s) => s.command!);
    const manifests = execFileSync('kubectl', ['kustomize', path.join(ROOT, 'deploy/overlays/cpu')], { encoding: 'utf8' });
    for (const doc of parseAllDocuments(manifests)) {
      const obj = doc.toJS() as { spec?: { template?: { spec: { containers: { command: string[] }[] } } } };
      for (const c of obj.spec?.template?.spec.containers ?? []) commands.push(c.command);
    }
    expect(commands.length).toBeGreaterThanOrEqual(8);
    for (const command of commands) {
      expect(command[0]).toBe('node');
      expect(existsSync(path.join(app, command[1]!)), command.join(' ')).toBe(true);
    }
  });

  it('runs the API, an upload, a training job and the embedder with plain node', async () => {
    const api = start('apps/api/src/main.js', { API_HOST: '127.0.0.1', API_PORT: '0' });
    const url = (await waitForLog(api, /Server listening at (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
    const { key } = await stack.createKey('compiled');

    const side = 16;
    const images = 128;
    const archive = await idxArchive({
      count: images,
      height: side,
      width: side,
      channels: 1,
      pixels: randomFillSync(new Uint8Array(images * side * side)),
      labels: Int32Array.from({ length: images }, (_, i) => i % 4),
    });
    const dataset = await postDataset(url, key, archive);
    expect(dataset.status, JSON.stringify(dataset.json)).toBe(201);

    const worker = start('apps/worker/src/main.js', { TRAIN_BACKEND: 'wasm', WORKER_OPS_PORT: '0' });
    const created = await fetch(`${url}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        dataset_id: dataset.json.id,
        hyperparameters: { width: 4, dim: 16, K: 128, batch_size: 32, bn_splits: 4, image_size: side, knn_k: 10, epochs: 1 },
      }),
    });
    expect(created.status).toBe(201);
    const job = (await created.json()) as { id: string };
    const end = Date.now() + 180_000;
    let status = '';
    while (Date.now() < end && !['succeeded', 'failed', 'cancelled'].includes(status)) {
      await new Promise((r) => setTimeout(r, 500));
      status = ((await (await fetch(`${url}/v1/jobs/${job.id}`, { headers: { authorization: `Bearer ${key}` } })).json()) as { status: string }).status;
    }
    expect(status, worker.logs.slice(-20).join('\n')).toBe('succeeded');

    const embedder = start('apps/embedder/src/main.js', { EMBED_HOST: '127.0.0.1', EMBED_PORT: '0', EMBED_OPS_PORT: '0', EMBED_BACKEND: 'wasm' });
    const ops = (await waitForLog(embedder, /"ops_url":"(http:\/\/[^"]+)"/))[1]!;
    const ready = await fetch(`${ops}/readyz`);
    expect(await ready.json()).toEqual({ status: 'ok', checks: { postgres: 'ok', storage: 'ok' } });

    // Every line each compiled service wrote is a JSON log entry.
    for (const p of [api, worker, embedder]) for (const line of p.logs) expect(() => JSON.parse(line), line).not.toThrow();
  }, 300_000);
});
