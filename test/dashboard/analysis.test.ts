import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Dataset, Job } from '@moco/contracts';
import { idxArchive, loadFashionMnist } from '@moco/data';
import { MocoClient } from '@moco/sdk';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedKey } from '../../apps/api/src/keys/key-service.js';
import { startTestApp, type TestApp } from '../../apps/api/src/testing/test-app.js';
import { chartReaches, openDashboardBrowser, type DashboardBrowser } from '../support/dashboard-browser.js';
import { startWorkerProcess, workerEnvFrom, type WorkerProcess } from '../support/worker-process.js';

// The dashboard's pages for choosing runs, end to end (API, worker, Chromium at 1366x768, screenshots
// in .artifacts/dashboard/): upload a dataset and see it, submit a job with the recipe's values
// shown, compare runs, read why a job failed. The tests run in order. Jobs and datasets made with
// the admin key belong to its project, like those the page makes.

const TRAIN_IMAGES = 512;
/** Tiny runs: 16 steps of 32 images per epoch. */
const TINY = { width: 4, dim: 16, batch_size: 32, K: 256, bn_splits: 4, epochs: 2, knn_k: 20 };

let t: TestApp;
let admin: CreatedKey;
let client: MocoClient;
let worker: WorkerProcess;
let dashboard: DashboardBrowser;
let page: Page;
let tempDir: string;
let trainFile: string;
let trainLabels: Int32Array;
let evalSet: Dataset;
let uploaded: Dataset;
let submitted: Job;

/** The page's text of a recipe value (an input's placeholder). */
const shown = (v: unknown) => (Array.isArray(v) ? v.join(',') : typeof v === 'number' ? String(Number(v.toPrecision(6))) : String(v));
const hashOf = () => new URL(page.url()).hash;

beforeAll(async () => {
  t = await startTestApp();
  [admin, tempDir] = await Promise.all([t.createKey('operators', { admin: true }), mkdtemp(path.join(tmpdir(), 'dashboard-analysis-'))]);
  worker = startWorkerProcess({ ...workerEnvFrom(t.config), WORKER_CACHE_DIR: path.join(tempDir, 'cache') });
  dashboard = await openDashboardBrowser();
  page = dashboard.page;
  client = new MocoClient({ baseUrl: t.url, apiKey: admin.key });
  const [train, test] = await Promise.all([loadFashionMnist('train', { limit: TRAIN_IMAGES }), loadFashionMnist('test', { limit: 256 })]);
  trainLabels = train.labels!;
  trainFile = path.join(tempDir, 'fashion-train.tar');
  await writeFile(trainFile, await idxArchive(train));
  evalSet = await client.datasets.upload(await idxArchive(test, 't10k'), { name: 'fashion-test-256' });
});

afterAll(async () => {
  await dashboard?.close();
  await worker?.stop('SIGKILL');
  await t?.close();
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
});

describe('dashboard: datasets, submission, comparison, failures', () => {
  it('uploads a dataset from the page with its progress, then shows thumbnails and images per class', async () => {
    await page.goto(`${t.url}/admin/#/datasets`);
    await page.locator('#sign-in input').fill(admin.key);
    await page.locator('#sign-in button').click();
    const form = page.locator('#upload-dataset');
    await form.waitFor();
    // Every state the status line goes through, recorded as it changes.
    await page.evaluate(`(() => {
      const status = document.getElementById('upload-status');
      const seen = (window.uploadStates = []);
      new MutationObserver(() => seen.push(status.textContent)).observe(status, { childList: true, characterData: true, subtree: true });
    })()`);
    await form.locator('input[type="file"]').setInputFiles(trainFile);
    await form.locator('input[name="name"]').fill('fashion-upload');
    await form.locator('button[type="submit"]').click();
    await expect.poll(hashOf, { timeout: 60_000 }).toMatch(/^#\/datasets\/ds_/);
    const states = (await page.evaluate('window.uploadStates')) as string[];
    expect(states.some((s) => /^[\d.]+ kB of [\d.]+ kB sent \(100%\)$/.test(s)), states.join(' | ')).toBe(true);
    expect(states).toContain('sent; the API is checking every image…');

    const id = decodeURIComponent(hashOf().slice('#/datasets/'.length));
    uploaded = await client.datasets.get(id);
    expect(uploaded).toMatchObject({ name: 'fashion-upload', image_count: TRAIN_IMAGES, status: 'ready', project_id: admin.project_id });
    await page.locator('#dataset-samples figure').first().waitFor();
    expect(await page.locator('#dataset-samples img').count()).toBe(48);
    // The first ten thumbnails are the ten classes in turn.
    const captions = await page.locator('#dataset-samples figcaption').allTextContents();
    expect(captions.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, c) => `label ${c}`));
    const counts = await page.locator('#class-counts tr[data-label]').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-count'))));
    expect(counts).toEqual(Array.from({ length: 10 }, (_, c) => trainLabels.filter((l) => l === c).length));
    // Every thumbnail decoded (a broken image has no natural width).
    expect(await page.locator('#dataset-samples img').evaluateAll((imgs) => imgs.every((i) => (i as unknown as { naturalWidth: number }).naturalWidth === 28))).toBe(true);
    await dashboard.shot('dataset');
  }, 120_000);

  it("submits a job from the page, showing the recipe's values and refusing a bad one at its field", async () => {
    await page.locator('#train-on-dataset').click();
    await expect.poll(hashOf).toBe(`#/submit?dataset_id=${uploaded.id}`);
    const field = (name: string) => page.locator(`#hyperparameters [data-field="${name}"]`);
    await expect.poll(() => field('K').locator('input').getAttribute('placeholder')).not.toBe(null);
    // Each empty field shows what the server would use for this dataset.
    const recipe = await client.jobs.preview({ dataset_id: uploaded.id });
    for (const [name, value] of Object.entries(recipe.hyperparameters)) {
      expect(await field(name).locator('input').getAttribute('placeholder'), name).toBe(shown(value));
    }
    await expect.poll(() => page.locator('#job-plan').textContent()).toContain(`= ${recipe.total_steps} steps`);

    await field('batch_size').locator('input').fill(String(TRAIN_IMAGES * 2));
    await expect.poll(() => field('batch_size').locator('.error').textContent()).toContain(`${TRAIN_IMAGES} images`);
    expect(await page.locator('#create-job').isDisabled()).toBe(true);
    await dashboard.shot('submit-refused');

    // The batch first: each fill previews again, and a preview with the refused batch would be refused again.
    const { batch_size: batch, ...rest } = TINY;
    for (const [name, value] of Object.entries({ batch_size: batch, ...rest })) await field(name).locator('input').fill(String(value));
    await page.locator('select[name="eval_dataset_id"]').selectOption(evalSet.id);
    await page.locator('input[name="seed"]').fill('7');
    await page.locator('input[name="metadata"]').fill('name=k256');
    await expect.poll(() => page.locator('#job-plan').textContent()).toContain('2 epochs × 16 steps = 32 steps');
    expect(await page.locator('#create-job').isDisabled()).toBe(false);
    // A field set here still names the recipe's value.
    expect(await field('K').locator('.muted').textContent()).toBe(`set (recipe: ${shown(recipe.hyperparameters.K)})`);
    await dashboard.shot('submit');
    await page.locator('#create-job').click();
    await expect.poll(hashOf).toMatch(/^#\/jobs\/job_/);
    submitted = await client.jobs.get(hashOf().slice('#/jobs/'.length));
    expect(submitted).toMatchObject({ dataset_id: uploaded.id, eval_dataset_id: evalSet.id, seed: 7, metadata: { name: 'k256' }, hyperparameters: TINY });
  }, 60_000);

  it('compares two runs: curves against epochs, the settings that differ, the results', async () => {
    const other = await client.jobs.create({
      dataset_id: uploaded.id,
      eval_dataset_id: evalSet.id,
      seed: 7,
      metadata: { name: 'k128' },
      hyperparameters: { ...TINY, K: 128, lr: submitted.hyperparameters.lr / 2 },
    });
    const [first, second] = await Promise.all([client.jobs.wait(submitted.id), client.jobs.wait(other.id)]);
    expect([first.status, second.status], worker.logs.slice(-20).join('\n')).toEqual(['succeeded', 'succeeded']);

    // The evaluation loop's own rows: the probe per evaluation, the dataset pair's baselines once at step 0.
    const baseline = async (id: string, name: string) => (await client.jobs.metrics(id, { names: [name] })).data[0]!.points[0]![1]!;
    const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
    const raw = await baseline(submitted.id, 'baseline_raw_knn_accuracy');
    const references = [
      ['raw pixels kNN', raw],
      ['raw pixels probe', await baseline(submitted.id, 'baseline_raw_probe_accuracy')],
      ['random init kNN', await baseline(submitted.id, 'baseline_random_knn_accuracy')],
      ['random init probe', await baseline(submitted.id, 'baseline_random_probe_accuracy')],
    ] as const;
    // Both runs share the dataset pair and image settings, so the second reuses the first's cached baselines.
    expect(await baseline(other.id, 'baseline_raw_knn_accuracy')).toBe(raw);

    await page.goto(`${t.url}/admin/#/jobs`);
    for (const id of [submitted.id, other.id]) await page.locator(`#jobs-table input[value="${id}"]`).check();
    await page.locator('#compare-selected').click();
    await expect.poll(hashOf).toBe(`#/compare?ids=${submitted.id},${other.id}`);
    await chartReaches(dashboard, 'knn_accuracy', 2, () => worker.logs);
    await chartReaches(dashboard, 'loss', 32, () => worker.logs);
    expect(await page.locator('[data-chart="probe_accuracy"]').getAttribute('data-series')).toBe(`${submitted.id}=2 ${other.id}=2`);
    const legend = await page.locator('[data-chart="knn_accuracy"] .u-legend').textContent();
    expect(legend).toContain('k256');
    expect(legend).toContain('k128');
    const differing = await page.locator('#compare-settings tr[data-differs]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-field')));
    expect(differing).toEqual(['K', 'lr']);
    for (const table of ['#compare-settings', '#compare-results']) expect(await page.locator(`${table} thead`).textContent()).toBe('k256k128');
    expect(await page.locator('#compare-results [data-status="succeeded"]').count()).toBe(2);
    expect(await page.locator('#compare-results tr[data-row="raw pixels kNN"]').textContent()).toBe(`raw pixels kNN${pct(raw)}${pct(raw)}`);
    await dashboard.shot('compare', true);

    // The finished job's own page: every chart filled, one epoch marker between its two epochs.
    await page.goto(`${t.url}/admin/#/jobs/${submitted.id}`);
    for (const chart of ['loss', 'lr', 'pretext_accuracy', 'feature_std']) await chartReaches(dashboard, chart, 32, () => worker.logs);
    await chartReaches(dashboard, 'images_per_s', 2, () => worker.logs);
    expect(await page.locator('[data-chart="loss"]').getAttribute('data-epoch-marks')).toBe('1');
    // The probe beside kNN, the baselines as reference lines.
    const evaluation = page.locator('[data-chart="knn_accuracy"]');
    expect(await evaluation.getAttribute('data-series')).toBe('knn_accuracy=2 probe_accuracy=2');
    expect(await evaluation.getAttribute('data-references')).toBe(references.map(([label, v]) => `${label} ${pct(v)}`).join('; '));
    await dashboard.shot('job-succeeded', true);
  }, 480_000);

  it('shows why a job failed in a box above its charts', async () => {
    const doomed = await client.jobs.create({ dataset_id: uploaded.id, hyperparameters: { ...TINY, epochs: 200 }, max_runtime_s: 1 });
    const failed = await client.jobs.wait(doomed.id);
    expect(failed.status).toBe('failed');
    await page.goto(`${t.url}/admin/#/jobs/${doomed.id}`);
    const box = page.locator('#job-error [role="alert"]');
    await box.waitFor();
    expect(await box.textContent()).toBe(`Failed: ${failed.error!.code}${failed.error!.message}`);
    expect(await page.locator('#job-error').isVisible()).toBe(true);
    await dashboard.shot('job-failed');
    // The browser logs the previews refused on purpose (one, or more on a slow machine); nothing else went wrong.
    expect(dashboard.pageErrors.length).toBeGreaterThan(0);
    expect(dashboard.pageErrors.filter((e) => !/status of 400 \(Bad Request\)/.test(e))).toEqual([]);
  }, 180_000);
});
