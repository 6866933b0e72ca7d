import { describe, expect, it } from 'vitest';
import { CreateJobRequest, EventCursor, ListJobsQuery, Metadata, MetricsQuery, UploadDatasetQuery } from './index.js';

describe('REST schemas', () => {
  it('defaults checkpoint_every and refuses unknown job fields', () => {
    expect(CreateJobRequest.parse({ dataset_id: 'ds_1' })).toEqual({ dataset_id: 'ds_1', checkpoint_every: 500 });
    expect(CreateJobRequest.safeParse({ dataset_id: 'ds_1', datset: 'x' }).success).toBe(false);
    expect(CreateJobRequest.safeParse({ dataset_id: 'ds_1', checkpoint_every: 0 }).success).toBe(false);
  });

  it('bounds metadata', () => {
    expect(Metadata.safeParse({ team: 'vision', 'run.id': '7' }).success).toBe(true);
    expect(Metadata.safeParse({ 'has space': 'x' }).success).toBe(false);
    expect(Metadata.safeParse({ k: 'x'.repeat(513) }).success).toBe(false);
    expect(Metadata.safeParse(Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']))).success).toBe(false);
  });

  it('reads comma lists and numbers from query strings', () => {
    expect(ListJobsQuery.parse({ status: 'queued, running', 'metadata.team': 'a' })).toEqual({
      limit: 20,
      status: ['queued', 'running'],
      'metadata.team': 'a',
    });
    expect(ListJobsQuery.safeParse({ status: 'queued,paused' }).success).toBe(false);
    expect(MetricsQuery.parse({ name: 'loss,lr', from_step: '3' })).toEqual({ name: ['loss', 'lr'], from_step: 3, limit: 10_000 });
  });

  it('reads event ids as cursors: digits only, exact in a double', () => {
    expect(EventCursor.parse('0')).toBe(0);
    expect(EventCursor.parse('999999999999999')).toBe(999_999_999_999_999);
    for (const bad of ['', '-1', '1e3', '0x10', ' 1', '1.0', '9999999999999999']) expect(EventCursor.safeParse(bad).success, bad).toBe(false);
  });

  it('keeps stored file names to one safe path segment', () => {
    for (const bad of ['../x.tar', 'a/b.tar', '.hidden', '']) expect(UploadDatasetQuery.safeParse({ filename: bad }).success, bad).toBe(false);
    expect(UploadDatasetQuery.parse({ filename: 'train-images-idx3-ubyte.gz' }).filename).toBe('train-images-idx3-ubyte.gz');
  });
});
