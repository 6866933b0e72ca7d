import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { idxArchive, loadFashionMnist } from '@moco/data';
import { MocoClient } from '@moco/sdk';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedKey } from '../../apps/api/src/keys/key-service.js';
import { startTestApp, type TestApp } from '../../apps/api/src/testing/test-app.js';
import { chartReaches as waitForChart, openDashboardBrowser, type DashboardBrowser } from '../support/dashboard-browser.js';
import { startWorkerProcess, workerEnvFrom, type WorkerProcess } from '../support/worker-process.js';

// The admin dashboard end to end: the API (real Postgres, Redis, S3 protocol), a real worker process
// training a tiny MoCo, and the pages in headless Chromium at a laptop's 1366x768. Screenshots go
// to .artifacts/dashboard/. The tests run in order, following one job from submission to promotion.

let t: TestApp;
let admin: CreatedKey;
let member: CreatedKey;
let client: MocoClient;
let worker: WorkerProcess;
let cacheDir: string;
let dashboard: DashboardBrowser;
let page: Page;
let jobId: string;
let pageErrors: string[];

const shot = (name: string, fullPage = false) => dashboard.shot(name, fullPage);
const points = (chart: string) => dashboard.points(chart);
const chartReaches = (chart: string, n: number, timeout?: number) => waitForChart(dashboard, chart, n, () => worker.logs, timeout);

beforeAll(async () => {
  t = await startTestApp();
  [admin, member, cacheDir] = await Promise.all([
    t.createKey('operators', { admin: true }),
    t.createKey('vision'),
    mkdtemp(path.join(tmpdir(), 'dashboard-worker-')),
  ]);
  worker = startWorkerProcess({ ...workerEnvFrom(t.config), WORKER_CACHE_DIR: cacheDir });
  dashboard = await openDashboardBrowser();
  ({ page, pageErrors } = dashboard);
  client = new MocoClient({ baseUrl: t.url, apiKey: member.key });
});

afterAll(async () => {
  await dashboard?.close();
  await worker?.stop('SIGKILL');
  await t?.close();
  if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
});

describe('admin dashboard', () => {
  it('asks for the key and refuses a member key', async () => {
    await page.goto(`${t.url}/admin`);
    expect(page.url()).toBe(`${t.url}/admin/`);
    const form = page.locator('#sign-in');
    await form.locator('input').fill(member.key);
    await form.locator('button').click();
    await expect.poll(() => form.locator('.error').textContent()).toBe('This key is not an admin key.');
    await shot('sign-in');
    await form.locator('input').fill(admin.key);
    await form.locator('button').click();
    await page.locator('#jobs-table').waitFor();
  });

  it('lists a job submitted through the SDK, with its dataset and progress', async () => {
    const [train, test] = await Promise.all([loadFashionMnist('train', { limit: 512 }), loadFashionMnist('test', { limit: 256 })]);
    const trainSet = await client.datasets.upload(await idxArchive(train), { name: 'fashion-mnist-512' });
    const evalSet = await client.datasets.upload(await idxArchive(test, 't10k'), { name: 'fashion-mnist-test-256' });
    const job = await client.jobs.create({
      dataset_id: trainSet.id,
      eval_dataset_id: evalSet.id,
      hyperparameters: { width: 4, dim: 16, batch_size: 32, K: 256, bn_splits: 4, epochs: 40, knn_k: 20 },
      checkpoint_every: 5,
      metadata: { team: 'vision' },
    });
    jobId = job.id;
    // The table refreshes by itself: no reload.
    const row = page.locator(`#jobs-table tr[data-job-id="${jobId}"]`);
    await row.waitFor({ timeout: 15_000 });
    await expect.poll(() => row.textContent()).toContain('fashion-mnist-512');
    expect(await row.textContent()).toContain('vision');
    await shot('jobs');
  });

  it('charts loss, learning rate and kNN accuracy live from the event stream', async () => {
    await page.locator(`#jobs-table a[href="#/jobs/${jobId}"]`).click();
    await page.locator('#event-log').waitFor();
    // A reload would drop this mark.
    await page.evaluate('window.notReloaded = true');
    await chartReaches('loss', 3, 90_000);
    const before = await points('loss');
    await chartReaches('loss', before + 3);
    await chartReaches('lr', before + 3);
    await expect.poll(() => page.locator('#stream-state').textContent()).toBe('● live');

    // A dropped connection (every socket of the server cut): the page resumes the stream from its
    // last event id, so the charts go on and no event shows twice.
    const dropped = await points('loss');
    t.app.server.closeAllConnections();
    await chartReaches('loss', dropped + 3);
    await expect.poll(() => page.locator('#stream-state').textContent()).toBe('● live');
    const ids = await page.locator('#event-log li').evaluateAll((items) => items.map((li) => li.getAttribute('data-id')));
    expect(new Set(ids).size).toBe(ids.length);
    // kNN accuracy and the speed come at each epoch's end (16 steps of 32 images).
    await chartReaches('knn_accuracy', 1);
    await chartReaches('images_per_s', 1);
    expect(await points('pretext_accuracy')).toBeGreaterThanOrEqual(before + 3);
    expect(await points('feature_std')).toBeGreaterThanOrEqual(before + 3);
    // The healthy spread of dim-16 features is drawn as a reference line, and every epoch's end is marked.
    const featureStd = page.locator('[data-chart="feature_std"]');
    expect(await featureStd.getAttribute('data-references')).toBe(`healthy 1/√dim = ${1 / Math.sqrt(16)}`);
    expect(await featureStd.getAttribute('data-epoch-marks')).toBe('39');
    expect(await page.evaluate('window.notReloaded')).toBe(true);
    expect(await page.locator('#job-status [data-status]').getAttribute('data-status')).toBe('running');
    expect(await page.locator('#event-log li[data-type="started"]').count()).toBe(1);
    await page.locator('#checkpoints-table tr[data-checkpoint-id]').first().waitFor();
    await shot('job-running', true);
  });

  it('cancels the running job from the page: the worker stops and keeps a checkpoint', async () => {
    page.once('dialog', (dialog) => void dialog.accept());
    await page.locator('#cancel-job').click();
    await page.locator('#job-status [data-status="cancelled"]').waitFor({ timeout: 30_000 });
    await expect.poll(() => page.locator('#stream-state').textContent()).toBe('finished');
    const job = await client.jobs.get(jobId);
    expect(job.status).toBe('cancelled');
    const checkpoints = [];
    for await (const c of client.jobs.checkpoints(jobId)) checkpoints.push(c);
    expect(checkpoints.length).toBeGreaterThan(0);
    expect(checkpoints.at(-1)!.step).toBe(job.progress.step);
    expect(await page.locator('#event-log li[data-type="cancelled"]').count()).toBe(1);
    expect(await page.locator('#cancel-job').isDisabled()).toBe(true);
    // The charts stopped where the job did.
    expect(await points('loss')).toBe(job.progress.step);
    await page.locator(`#checkpoints-table tr[data-step="${job.progress.step}"]`).waitFor();
    await page.locator('details summary').click();
    await shot('job-cancelled', true);
  });

  it('promotes a checkpoint from the job page and shows it on the models page', async () => {
    const newest = page.locator('#checkpoints-table tbody tr').first();
    const checkpointId = await newest.getAttribute('data-checkpoint-id');
    await newest.locator('input[name="alias"]').fill('staging');
    await newest.locator('form.promote button').click();
    await expect.poll(() => page.locator('.message').textContent()).toContain('as staging');
    await expect.poll(() => newest.locator('.chip').textContent()).toBe('staging');

    await page.locator('a[data-nav="models"]').click();
    const row = page.locator(`#models-table tr[data-model-id="${checkpointId}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain('staging');
    expect(await row.textContent()).toContain('vision');
    await shot('models');
  });

  it('downloads a checkpoint as PyTorch and ONNX from the job page, named and whole', async () => {
    await page.goto(`${t.url}/admin#/jobs/${jobId}`);
    const newest = page.locator('#checkpoints-table tbody tr').first();
    await newest.waitFor();
    const checkpointId = (await newest.getAttribute('data-checkpoint-id'))!;
    for (const [label, format, name] of [
      ['PyTorch', 'pytorch', `${checkpointId}.pth.tar`],
      ['ONNX', 'onnx', `${checkpointId}-head.onnx`],
    ] as const) {
      const saving = page.waitForEvent('download');
      await newest.locator(`button[data-download="${label}"]`).click();
      const saved = await saving;
      expect(saved.suggestedFilename()).toBe(name);
      const file = await readFile((await saved.path())!);
      const fromSdk = await client.checkpoints.export(checkpointId, { format, output: 'head' });
      expect(file.length).toBe(fromSdk.bytes);
      expect(createHash('sha256').update(file).digest('hex')).toBe(fromSdk.sha256);
      fromSdk.body.destroy();
    }
  });

  it('lists the datasets', async () => {
    await page.locator('a[data-nav="datasets"]').click();
    await page.locator('#datasets-table').waitFor();
    const names = await page.locator('#datasets-table tbody tr strong').allTextContents();
    expect(names.sort()).toEqual(['fashion-mnist-512', 'fashion-mnist-test-256']);
    expect(await page.locator('#datasets-table tbody').textContent()).toContain('512');
    await shot('datasets');
  });

  it('shows queue health with the one worker online', async () => {
    await page.locator('a[data-nav="queue"]').click();
    await expect.poll(() => page.locator('[data-queue="workers"] .stat-value').textContent()).toBe('1');
    expect(await page.locator('#workers-table tbody tr').count()).toBe(1);
    // The top bar's summary refreshes on navigation; the message settles right after the job's row.
    await expect.poll(() => page.locator('#queue-summary').textContent()).toBe('1 worker · 0 waiting · 0 active');
    await shot('queue');
    await page.locator('a[data-nav="jobs"]').click();
    await page.locator(`#jobs-table tr[data-job-id="${jobId}"][data-status="cancelled"]`).waitFor();
    await shot('jobs-after');
    // Filters go to the address and narrow the table.
    await page.locator('#job-filters select[name="status"]').selectOption('queued,running,cancelling');
    await expect.poll(() => page.locator('#jobs-table tbody').textContent()).toBe('No jobs match.');
    expect(page.url()).toContain('#/jobs?status=queued%2Crunning%2Ccancelling');
    await page.locator('#job-filters input[name="metadata"]').fill('team=vision');
    await page.locator('#job-filters select[name="status"]').selectOption('cancelled');
    await page.locator(`#jobs-table tr[data-job-id="${jobId}"]`).waitFor();
    // The browser logs the refused member key and the stream cut on purpose; nothing else went wrong.
    expect(pageErrors).toEqual([expect.stringMatching(/status of 403/), expect.stringMatching(/ERR_INCOMPLETE_CHUNKED_ENCODING/)]);
  });
});
