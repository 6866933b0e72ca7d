import { describe, expect, it } from 'vitest';
import { parseJobEventData } from './job-events.js';
import { MalformedMessageError, parseChildMessage, parseParentMessage, type StartMessage } from './trainer-messages.js';

const start: StartMessage = {
  type: 'start',
  storage: { kind: 's3', bucket: 'b', region: 'us-east-1', endpoint: 'http://127.0.0.1:9000', forcePathStyle: true },
  cache: { dir: '/tmp/cache', maxBytes: 1 << 30 },
  backend: 'auto',
  train: { id: 'ds_1', objectKey: 'projects/p/datasets/ds_1/train.tar', uri: 's3://b/x' },
  eval: null,
  channels: 1,
  hyperparameters: { epochs: 1 },
  seed: 7,
  limits: { maxBytes: 1e9, maxFiles: 1000, maxPixelsPerImage: 1e6 },
  checkpointEvery: 500,
  checkpointPrefix: 'projects/p/jobs/j/checkpoints/',
  resumeKey: null,
  earlyStopping: { metric: 'probe_accuracy', patience: 2, min_delta: 0 },
  collapse: null,
  evaluations: [{ step: 8, value: 0.5 }],
  baselines: null,
};

describe('worker <-> trainer messages', () => {
  it('reads well-formed messages both ways, a diverged loss staying NaN', () => {
    expect(parseParentMessage(start)).toEqual(start);
    expect(parseParentMessage({ type: 'stop' })).toEqual({ type: 'stop' });
    const step = { type: 'step', step: 3, epoch: 1, loss: Number.NaN, lr: 0.03, pretextAccuracy: 0, featureStd: Number.NaN, images: 32, seconds: 0.5 };
    expect(parseChildMessage(step)).toEqual(step);
    const done = { type: 'done', ending: { kind: 'collapsed', step: 3, featureStd: 0.001, threshold: 0.01, steps: 2 } };
    expect(parseChildMessage(done)).toEqual(done);
  });

  it('rejects a malformed message with an error naming the sender, the type and the field', () => {
    const bad = () => parseParentMessage({ ...start, storage: { kind: 's3', region: 'x' } });
    expect(bad).toThrow(MalformedMessageError);
    expect(bad).toThrow(/malformed message 'start' from the worker[\s\S]*storage\.bucket/);
    expect(() => parseChildMessage({ type: 'checkpoint', step: 4, epoch: 1, key: 'k', bytes: -1, final: false, best: false, seconds: 0.1 })).toThrow(
      /malformed message 'checkpoint' from the trainer process[\s\S]*bytes/,
    );
    expect(() => parseChildMessage({ type: 'progress' })).toThrow(/from the trainer process/);
    expect(() => parseParentMessage('start')).toThrow(MalformedMessageError);
  });
});

describe('job event data', () => {
  it("checks an event's data against its type's schema", () => {
    const data = { step: 8, epoch: 1, checkpoint_id: 'ckpt_1', knn_accuracy: 0.5, probe_accuracy: 0.6 };
    expect(parseJobEventData('evaluated', data)).toEqual(data);
    expect(() => parseJobEventData('evaluated', { ...data, knn_accuracy: 'high' })).toThrow(/'evaluated' job event[\s\S]*knn_accuracy/);
    expect(() => parseJobEventData('collapsed', { step: 3 })).toThrow(/threshold/);
  });
});
