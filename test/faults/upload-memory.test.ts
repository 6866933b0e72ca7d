import { randomFillSync } from 'node:crypto';
import { idxFile } from '@moco/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childPids, residentBytes, startApiProcess, type ApiProcess } from '../support/api-process.js';
import { gzippedZeroIdx, postDataset } from '../support/dataset-files.js';
import { startLocalStack, type LocalStack } from '../support/local-stack.js';

// The API's memory while uploads are validated, measured on a real API process (/proc/<pid>/status):
// it must stay within BOUND above idle whatever a dataset decompresses and decodes to.

const MiB = 1024 ** 2;
const BOUND = 512 * MiB;
/** MAX_DATASET_BYTES: each bomb below expands to (just under, or just over) this. */
const LIMIT = 768 * MiB;
const SIDE = 28;

let stack: LocalStack;
let api: ApiProcess;
let key: string;

beforeAll(async () => {
  stack = await startLocalStack();
  api = await startApiProcess({ ...stack.env, MAX_DATASET_BYTES: String(LIMIT), MAX_CONCURRENT_UPLOADS: '3' });
  key = (await stack.createKey('memory')).key;
});

afterAll(async () => {
  await api?.stop('SIGKILL');
  await stack?.close();
});

describe('upload validation memory', () => {
  it(`keeps the API within ${BOUND / MiB} MiB above idle while a bomb, a refused bomb and a large valid upload are validated at once`, async () => {
    const fits = Math.floor((LIMIT - 16) / (SIDE * SIDE));
    const bomb = await gzippedZeroIdx(fits, SIDE);
    const refusedBomb = await gzippedZeroIdx(fits + 1000, SIDE);
    const large = idxFile([80_000, SIDE, SIDE], randomFillSync(new Uint8Array(80_000 * SIDE * SIDE)));
    const pid = api.proc.pid!;
    const idle = await residentBytes(pid);
    let peak = idle;
    // The validation processes' total, for the figures (each is bounded by the dataset limits, not by this test).
    let childrenPeak = 0;
    const sampler = setInterval(() => {
      residentBytes(pid).then((rss) => (peak = Math.max(peak, rss)), () => undefined);
      childPids(pid)
        .then((pids) => Promise.all(pids.map((child) => residentBytes(child).catch(() => 0))))
        .then((sizes) => (childrenPeak = Math.max(childrenPeak, sizes.reduce((a, b) => a + b, 0))), () => undefined);
    }, 20);
    try {
      const [accepted, refused, valid] = await Promise.all([
        postDataset(api.url, key, bomb),
        postDataset(api.url, key, refusedBomb),
        postDataset(api.url, key, large),
      ]);
      expect(accepted.status).toBe(201);
      expect(accepted.json).toMatchObject({ image_count: fits, height: SIDE, width: SIDE });
      expect(refused.status).toBe(422);
      expect(refused.json.error.details[0].code).toBe('too_large');
      expect(valid.status).toBe(201);
    } finally {
      clearInterval(sampler);
    }
    console.log(`API RSS: idle ${(idle / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB (+${((peak - idle) / MiB).toFixed(0)} MiB); validation processes together ${(childrenPeak / MiB).toFixed(0)} MiB at most; ` +
      `validating ${(bomb.length / MiB).toFixed(1)} MiB -> ${(fits * SIDE * SIDE / MiB).toFixed(0)} MiB, ${(refusedBomb.length / MiB).toFixed(1)} MiB -> over ${LIMIT / MiB} MiB, ${(large.length / MiB).toFixed(0)} MiB raw`);
    expect(peak - idle).toBeLessThan(BOUND);
  });
});
