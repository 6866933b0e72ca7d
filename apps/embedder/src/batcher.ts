import { status } from '@grpc/grpc-js';
import type { CheckpointTransform } from '@moco/models';
import type { EmbedderMetrics } from './embedder-metrics.js';
import { EmbedError } from './errors.js';
import type { ForwardPass, OutputKind, Vectors } from './forward-thread.js';
import type { ModelInput } from './preprocess.js';

export interface BatchJob {
  /** Jobs with the same key share forward passes: same loaded model, output and normalisation. */
  key: string;
  /** The loaded model (ForwardThread handle). */
  handle: number;
  output: OutputKind;
  normalize: boolean;
  /** The model's evaluation transform (the same for every job of a key). */
  transform: CheckpointTransform;
  /** The request's images: pixels are transformed together with the rest of the pass. */
  input: ModelInput;
  /** Epoch ms; Infinity for none. */
  deadline: number;
  /** True once the caller has gone (cancelled, deadline passed on the transport). */
  isCancelled: () => boolean;
}

export interface BatchStats {
  forwardPasses: number;
  imagesEmbedded: number;
  /** Images in each forward pass, the most recent last (bounded). */
  recentBatchSizes: number[];
  /** Requests dropped before their forward pass because their deadline had passed or the caller left. */
  dropped: number;
  /** Milliseconds spent in forward passes (input assembly, evaluation transform, model, results, the trip to the thread). */
  forwardMs: number;
}

interface Pending {
  job: BatchJob;
  count: number;
  enqueued: number;
  resolve: (result: Vectors) => void;
  reject: (error: Error) => void;
}

const RECENT_BATCHES = 1000;
const PASSES_IN_FLIGHT = 2;

/**
 * Merges concurrent requests into forward passes of up to `maxBatch` images. Up to PASSES_IN_FLIGHT
 * passes are with the model thread at once: one computing, the next waiting there, so the model never
 * waits for the main thread between passes; beyond, requests queue up here and go together. An idle
 * batcher waits at most `maxDelayMs` after a request arrives for others to join it.
 */
export class MicroBatcher {
  readonly stats: BatchStats = { forwardPasses: 0, imagesEmbedded: 0, recentBatchSizes: [], dropped: 0, forwardMs: 0 };
  private readonly queue: Pending[] = [];
  /** Passes with the model thread. */
  private running = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;

  constructor(
    private readonly opts: { maxBatch: number; maxDelayMs: number },
    private readonly runPass: (pass: ForwardPass) => Promise<Vectors>,
    private readonly metrics: Pick<EmbedderMetrics, 'forwardPass'>,
  ) {}

  /** The request's vectors, [n, dim] row-major. */
  submit(job: BatchJob): Promise<Vectors> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, count: job.input.count, enqueued: performance.now(), resolve, reject });
      this.pump();
    });
  }

  /** From now on, run whatever is queued without waiting for more (shutdown). */
  flush(): void {
    this.flushing = true;
    this.pump();
  }

  private pump(): void {
    if (this.running >= PASSES_IN_FLIGHT || this.queue.length === 0) return;
    const first = this.queue[0]!;
    const queued = this.queue.reduce((n, p) => (p.job.key === first.job.key ? n + p.count : n), 0);
    const waited = performance.now() - first.enqueued;
    if (this.flushing || queued >= this.opts.maxBatch || waited >= this.opts.maxDelayMs) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.running++;
      void this.run(first.job.key);
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, this.opts.maxDelayMs - waited);
    }
  }

  private async run(key: string): Promise<void> {
    const batch: Pending[] = [];
    let images = 0;
    // The oldest request always goes (alone if it exceeds maxBatch); later ones of the same key while they fit.
    for (let i = 0; i < this.queue.length; ) {
      const p = this.queue[i]!;
      if (p.job.key !== key || (batch.length > 0 && images + p.count > this.opts.maxBatch)) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      if (Date.now() >= p.job.deadline || p.job.isCancelled()) {
        this.stats.dropped++;
        p.reject(new EmbedError(status.DEADLINE_EXCEEDED, 'deadline exceeded before the request reached the model'));
        continue;
      }
      batch.push(p);
      images += p.count;
    }
    const settle = batch.length > 0 ? await this.forward(batch, images) : () => {};
    // The next pass goes to the model thread before this one's responses are sent: sending them is
    // main-thread work the model need not wait for.
    this.running--;
    this.pump();
    settle();
  }

  /** Runs the pass; the returned function hands each request its vectors (or the pass's error). */
  private async forward(batch: Pending[], images: number): Promise<() => void> {
    const { handle, output, normalize, transform } = batch[0]!.job;
    const started = performance.now();
    let vectors: Vectors;
    try {
      const inputs = batch.map((p) => p.job.input);
      vectors = await this.runPass({ handle, output, normalize, transform, inputs, batchSize: Math.max(this.opts.maxBatch, 1) });
    } catch (error) {
      return () => batch.forEach((p) => p.reject(error as Error));
    }
    this.stats.forwardMs += performance.now() - started;
    this.stats.forwardPasses++;
    this.stats.imagesEmbedded += images;
    this.metrics.forwardPass(images, batch.map((p) => (started - p.enqueued) / 1000));
    this.stats.recentBatchSizes.push(images);
    if (this.stats.recentBatchSizes.length > RECENT_BATCHES) this.stats.recentBatchSizes.shift();
    const { data, dim } = vectors;
    return () => {
      let offset = 0;
      for (const p of batch) {
        p.resolve({ data: data.subarray(offset * dim, (offset + p.count) * dim), dim });
        offset += p.count;
      }
    };
  }
}
