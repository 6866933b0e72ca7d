import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, createTrainingQueue, enqueueTraining, type TrainingQueue } from './index.js';

describe('enqueueTraining', () => {
  const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  let queue: TrainingQueue;
  beforeAll(() => {
    queue = createTrainingQueue(redis, `test-${randomBytes(4).toString('hex')}`);
  });
  afterAll(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    redis.disconnect();
  });

  it('keeps one message per job id, and replaces a finished one', async () => {
    await enqueueTraining(queue, 'job_a');
    await enqueueTraining(queue, 'job_a');
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 1 });
    const msg = (await queue.getJob('job_a'))!;
    expect(msg.data).toEqual({ jobId: 'job_a' });
    await msg.moveToFailed(new Error('lost'), '0', false).catch(() => undefined);
    await queue.getJob('job_a').then((j) => j?.remove());
    await enqueueTraining(queue, 'job_a');
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 1 });
  });
});
