import { randomBytes } from 'node:crypto';
import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, createTrainingQueue, enqueueTraining, TRAINING_QUEUE, type TrainingQueue } from './index.js';

describe('enqueueTraining', () => {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redis = createRedis(url);
  const prefix = `test-${randomBytes(4).toString('hex')}`;
  let queue: TrainingQueue;
  beforeAll(() => {
    queue = createTrainingQueue(redis, prefix);
  });
  afterAll(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    redis.disconnect();
  });

  it('keeps one message per job id while it is live, and replaces a finished one', async () => {
    await enqueueTraining(queue, 'job_a');
    await enqueueTraining(queue, 'job_a');
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 1 });
    expect((await queue.getJob('job_a'))!.data).toEqual({ jobId: 'job_a' });

    // A worker finishes the message; Postgres later says the job is live again (a resume).
    const processed: string[] = [];
    const workerRedis = createRedis(url);
    const done = new Promise<void>((resolve) => {
      const worker = new Worker(
        TRAINING_QUEUE,
        async (job) => {
          processed.push(job.data.jobId);
        },
        { connection: workerRedis, prefix },
      );
      worker.on('completed', () => void worker.close().then(resolve));
    });
    await done;
    workerRedis.disconnect();
    expect(processed).toEqual(['job_a']);
    expect(await (await queue.getJob('job_a'))!.getState()).toBe('completed');
    await enqueueTraining(queue, 'job_a');
    expect(await (await queue.getJob('job_a'))!.getState()).toBe('waiting');
  });
});
