// The worker's Prometheus metrics, in one place: runs, the processor and main.ts call these hooks
// and know nothing of prom-client. Counters rather than rates: Prometheus computes rate() itself.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ChildMessage } from '@moco/contracts';

/** How one run (attempt) of a job ended on this worker. */
export type RunEnding = 'succeeded' | 'failed' | 'cancelled' | 'requeued' | 'lost';

export interface WorkerMetrics {
  /** A job run started (true) or ended (false) on this worker. */
  running(on: boolean): void;
  /** A report of the run's trainer child, as recorded. */
  report(message: ChildMessage): void;
  /** `errorCode`: the run ended in an error (whether the job failed or goes back for a retry). */
  ended(ending: RunEnding, errorCode?: string): void;
}

export function createWorkerMetrics(registry: Registry): WorkerMetrics {
  const registers = [registry];
  const jobs = new Counter({ name: 'moco_worker_jobs_total', help: 'Job runs ended on this worker, by outcome', labelNames: ['outcome'], registers });
  const failures = new Counter({ name: 'moco_worker_job_failures_total', help: 'Job runs that ended in an error, by error code', labelNames: ['code'], registers });
  const steps = new Counter({ name: 'moco_worker_training_steps_total', help: 'Training steps done (steps replayed after a resume count again)', registers });
  const images = new Counter({ name: 'moco_worker_images_trained_total', help: 'Images trained on (one per image of each step)', registers });
  const throughput = new Gauge({ name: 'moco_worker_images_per_second', help: "The running job's images per second, at its latest step", registers });
  const checkpointSeconds = new Histogram({
    name: 'moco_worker_checkpoint_write_seconds',
    help: "Seconds the trainer took to upload a checkpoint to the object store",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const active = new Gauge({ name: 'moco_worker_job_running', help: '1 while this worker runs a job, else 0', registers });
  // Every outcome shows from the start (0), so that rate() and alerts see the series before it first moves.
  for (const outcome of ['succeeded', 'failed', 'cancelled', 'requeued', 'lost'] satisfies RunEnding[]) jobs.labels(outcome).inc(0);
  active.set(0);

  return {
    running(on) {
      active.set(on ? 1 : 0);
      if (!on) throughput.set(0);
    },
    report(message) {
      if (message.type === 'step') {
        steps.inc();
        images.inc(message.images);
        if (message.seconds > 0) throughput.set(message.images / message.seconds);
      } else if (message.type === 'checkpoint') {
        checkpointSeconds.observe(message.seconds);
      }
    },
    ended(ending, errorCode) {
      jobs.labels(ending).inc();
      if (errorCode) failures.labels(errorCode).inc();
    },
  };
}
