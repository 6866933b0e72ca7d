import { resolveHyperparameters } from '@moco/contracts';
import { beforeAll, describe, expect, it } from 'vitest';
import { fitsWorkers } from '../../jobs/worker-memory.js';
import type { CreatedKey } from '../../keys/key-service.js';
import { insertDataset } from '../../testing/fixtures.js';
import { bearer, useTestApp } from '../../testing/test-app.js';

// Workers on the wasm backend: its heap stops at 4 GiB.
const t = useTestApp({ WORKER_FLEET_BACKEND: 'wasm' });
let key: CreatedKey;
let gray: string;
let colour: string;

beforeAll(async () => {
  key = await t.current.createKey('memory');
  gray = (await insertDataset(t.current.db, key.project_id, { imageCount: 60_000 })).id;
  colour = (await insertDataset(t.current.db, key.project_id, { height: 32, width: 32, channels: 3 })).id;
});

const post = (body: object) => t.current.app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(key), payload: body });

describe('jobs that cannot fit the workers', () => {
  it('are refused at creation with 422 model_too_large naming the estimate and the limit', async () => {
    // Width 64, batch 128 on 32x32 colour images with the symmetric loss runs the wasm heap out.
    const wide = await post({ dataset_id: colour, hyperparameters: { width: 64, batch_size: 128, K: 256 } });
    expect(wide.statusCode).toBe(422);
    expect(wide.json().error).toEqual({
      code: 'model_too_large',
      param: 'hyperparameters',
      message: expect.stringMatching(/^a training step of this job needs about \d+\.\d\d GiB \(estimated: width 64, batch_size 128, image_size 32, resnet18, symmetric loss\), more than the wasm backend's limit of 4\.00 GiB: .*or set symmetric false/),
    });
    // The recipe's defaults for 60 000 small images (width 64, batch 512) too.
    expect((await post({ dataset_id: gray })).json().error.code).toBe('model_too_large');
    expect(await t.current.db.job.count({ where: { projectId: key.project_id } })).toBe(0);

    const fits = await post({ dataset_id: colour, hyperparameters: { width: 16, batch_size: 64, K: 256 } });
    expect(fits.statusCode).toBe(201);
    // The asymmetric loss holds half the activations: the same width-64 job without it fits.
    const asymmetric = await post({ dataset_id: colour, hyperparameters: { width: 64, batch_size: 128, K: 256, symmetric: false } });
    expect(asymmetric.statusCode, asymmetric.body).toBe(201);
    const wider = await post({ dataset_id: colour, hyperparameters: { width: 64, batch_size: 256, K: 512, symmetric: false } });
    expect(wider.json().error.message).toMatch(/batch_size 256, image_size 32, resnet18\), more than the wasm backend's limit of 4\.00 GiB: lower batch_size, width or image_size$/);
  });

  it('are measured against WORKER_FLEET_MEMORY_MB where it is set, on any backend', () => {
    const { value } = resolveHyperparameters({ width: 16, batch_size: 64, K: 256 }, { height: 28, width: 28, channels: 1, imageCount: 1000 });
    expect(() => fitsWorkers({ WORKER_FLEET_BACKEND: 'native' })(value, 1)).not.toThrow();
    expect(() => fitsWorkers({ WORKER_FLEET_BACKEND: 'native', WORKER_FLEET_MEMORY_MB: 4096 })(value, 1)).not.toThrow();
    expect(() => fitsWorkers({ WORKER_FLEET_BACKEND: 'native', WORKER_FLEET_MEMORY_MB: 128 })(value, 1)).toThrow(
      /more than the workers' memory \(WORKER_FLEET_MEMORY_MB, native backend\) of 0\.13 GiB/,
    );
  });
});
